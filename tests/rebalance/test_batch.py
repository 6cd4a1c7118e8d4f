"""rebalance_many: same plans on every executor, failures kept per account, one
compiled problem per (universe, process).

Oracles: the rebalancer called directly on each account (plans must match bit for
bit), hand-built expectations of grouping and of which account fails, and the
frame's columns recomputed from the plans.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
import pytest

from rebalopt import MarketImpact, NaiveRebalancer, PortfolioState, RebalanceConfig, Spread
from rebalopt.errors import InputError
from rebalopt.rebalance import _batch_worker
from rebalopt.rebalance import batch as batch_mod
from rebalopt.rebalance.batch import Account, BatchResult, rebalance_many, with_constraints


def _universe(tag: str, n: int) -> list[str]:
    return [f"{tag}{i:03d}" for i in range(n)]


def make_accounts(n_accounts: int, universes: dict[str, int], seed: int = 0) -> list[Account]:
    """Random accounts cycling over ``universes`` (tag -> number of assets)."""
    rng = np.random.default_rng(seed)
    tags = list(universes)
    out = []
    for k in range(n_accounts):
        tag = tags[k % len(tags)]
        names = _universe(tag, universes[tag])
        n = len(names)
        prices = pd.Series(rng.uniform(10, 200, n), index=names)
        held = rng.random(n) < 0.7
        holdings = pd.Series(np.where(held, rng.integers(1, 500, n), 0).astype(float), index=names)
        state = PortfolioState(
            holdings, cash=float(rng.uniform(1e3, 5e4)), prices=prices,
            adv=pd.Series(rng.uniform(1e5, 1e6, n), index=names),
            volatility=pd.Series(rng.uniform(0.01, 0.03, n), index=names),
        )
        w = rng.dirichlet(np.ones(n)) * 0.97
        out.append(Account(f"acct{k:03d}", state, pd.Series(w, index=names)))
    return out


REBALANCER = NaiveRebalancer(
    config=RebalanceConfig(min_trade_value=50.0, min_weight_change=0.002),
    costs=[Spread(half_spread_bps=5.0), MarketImpact(coef=0.5)],
)


def assert_same_plans(a: BatchResult, b: BatchResult) -> None:
    assert list(a.plans) == list(b.plans)
    for name in a.plans:
        pa, pb = a.plans[name], b.plans[name]
        assert pa.trades.tobytes() == pb.trades.tobytes(), name  # bit for bit
        assert pa.costs.keys() == pb.costs.keys()
        for k in pa.costs:
            assert pa.costs[k].tobytes() == pb.costs[k].tobytes(), (name, k)
    assert a.errors == b.errors
    cols = ["account", "status", "n_trades", "turnover", "cost", "error_type", "error"]
    pd.testing.assert_frame_equal(a.frame[cols], b.frame[cols])


@pytest.fixture(scope="module")
def accounts() -> list[Account]:
    return make_accounts(24, {"U": 30, "V": 12, "W": 7}, seed=1)


@pytest.fixture(scope="module")
def dask_client():
    """A local Dask cluster (2 worker processes, 1 thread each) shared by this module."""
    distributed = pytest.importorskip("distributed", reason="dask.distributed not installed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def serial(accounts) -> BatchResult:
    batch_mod.clear_worker_cache()
    return rebalance_many(accounts, REBALANCER, chunk_size=5)


# --------------------------------------------------------------- serial oracle
def test_serial_matches_direct_calls(accounts, serial):
    assert serial.ok and len(serial) == len(accounts)
    assert list(serial.plans) == [a.name for a in accounts]
    for acc in accounts:
        direct = REBALANCER.plan(acc.state, acc.targets)
        got = serial.plans[acc.name]
        np.testing.assert_array_equal(got.trades, direct.trades)
        assert got.total_cost == direct.total_cost


def test_frame_rows_recomputed_from_plans(accounts, serial):
    f = serial.frame
    assert list(f["account"]) == [a.name for a in accounts]
    assert (f["status"] == "ok").all() and f["error"].isna().all()
    for _, row in f.iterrows():
        p = serial.plans[row["account"]]
        assert row["n_trades"] == int(np.count_nonzero(p.trades))
        trade_value = np.abs(p.trades * p.state.prices).sum()
        assert row["turnover"] == pytest.approx(0.5 * trade_value / p.state.equity, rel=1e-12)
        by_model = row["cost_Spread"] + row["cost_MarketImpact"]
        assert row["cost"] == pytest.approx(by_model, rel=1e-12)
        assert row["cost_Spread"] == pytest.approx(
            5e-4 * trade_value, rel=1e-12)


def test_tuples_and_accounts_accepted_equally(accounts, serial):
    tuples = [(a.name, a.state, a.targets) for a in accounts]
    assert_same_plans(rebalance_many(tuples, REBALANCER, chunk_size=5), serial)


# --------------------------------------------------------------- executors
def test_process_pool_gives_identical_plans(accounts, serial):
    with ProcessPoolExecutor(max_workers=2) as ex:
        res = rebalance_many(accounts, REBALANCER, ex, chunk_size=5)
    assert_same_plans(res, serial)
    assert (res.frame["worker"] != os.getpid()).all()


def test_dask_local_cluster_gives_identical_plans(accounts, serial, dask_client):
    res = rebalance_many(accounts, REBALANCER, dask_client.get_executor(), chunk_size=5)
    worker_pids = set(dask_client.run(os.getpid).values())
    assert_same_plans(res, serial)
    assert set(res.frame["worker"]) <= worker_pids


# --------------------------------------------------------------- failures
def test_failing_account_is_reported_and_others_kept(accounts, serial):
    bad = accounts[5]
    names = list(bad.state.assets)
    prices = pd.Series(bad.state.prices, index=names)
    prices.iloc[0] = np.nan  # unpriced asset, so it leaves the universe ...
    holdings = pd.Series(bad.state.holdings, index=names)
    holdings.iloc[0] = 0.0
    state = PortfolioState(holdings, bad.state.cash, prices)
    broken = Account(bad.name, state, bad.targets)  # ... but still has a target weight
    mixed = accounts[:5] + [broken] + accounts[6:]
    with ProcessPoolExecutor(max_workers=2) as ex:
        res = rebalance_many(mixed, REBALANCER, ex, chunk_size=5)
    assert list(res.errors) == [bad.name]
    err = res.errors[bad.name]
    assert err.type == "InputError" and names[0] in err.message and "price" in err.message
    row = res.frame.set_index("account").loc[bad.name]
    assert row["status"] == "error" and row["error_type"] == "InputError"
    assert np.isnan(row["cost"]) and pd.isna(row["n_trades"])
    others = [a.name for a in accounts if a.name != bad.name]
    assert list(res.plans) == others
    for name in others:
        np.testing.assert_array_equal(res.plans[name].trades, serial.plans[name].trades)


def test_per_account_constraints_on_a_rebalancer_without_them(accounts):
    acc = dataclasses.replace(accounts[0], constraints=("no-buy AAPL",))
    res = rebalance_many([acc, accounts[1]], REBALANCER)
    assert list(res.errors) == [acc.name] and res.errors[acc.name].type == "InputError"
    assert "constraints" in res.errors[acc.name].message
    assert list(res.plans) == [accounts[1].name]


def test_with_constraints_appends_to_a_dataclass_field():
    @dataclasses.dataclass
    class Toy:
        constraints: list = dataclasses.field(default_factory=list)

    base = Toy(["a"])
    assert with_constraints(base, ()) is base
    got = with_constraints(base, ("b", "c"))
    assert got.constraints == ["a", "b", "c"] and base.constraints == ["a"]


def test_bad_inputs_raise_typed_errors(accounts):
    with pytest.raises(InputError, match="duplicate account name"):
        rebalance_many([accounts[0], accounts[0]], REBALANCER)
    with pytest.raises(InputError, match="chunk_size"):
        rebalance_many(accounts[:2], REBALANCER, chunk_size=0)
    with pytest.raises(InputError, match="chunk_size"):  # rev7: True was a chunk of 1
        rebalance_many(accounts[:2], REBALANCER, chunk_size=True)
    with pytest.raises(InputError) as e:  # rev7: "no" was truthy and showed the bar
        rebalance_many(accounts[:2], REBALANCER, progress="no")
    assert e.value.field == "progress"
    with pytest.raises(InputError, match="expected an Account"):
        rebalance_many(["nope"], REBALANCER)
    with pytest.raises(InputError, match="state"):
        Account("x", {"A": 1.0}, {"A": 1.0})


def test_empty_batch():
    res = rebalance_many([], REBALANCER)
    assert res.ok and len(res) == 0 and res.plans == {}


# --------------------------------------------------------------- reuse
def test_chunks_never_mix_universes_and_keep_input_order(accounts):
    tasks = batch_mod._make_tasks(accounts, b"x", chunk_size=3)
    seen = []
    for t in tasks:
        assert len(t.accounts) <= 3
        assert {tuple(a.state.assets) for a in t.accounts} == {t.universe}
        seen.extend(t.positions)
        assert list(t.positions) == sorted(t.positions)
    assert sorted(seen) == list(range(len(accounts)))
    # 24 accounts over 3 universes -> 8 per universe -> chunks of 3, 3, 2 each
    assert [len(t.positions) for t in tasks] == [3, 3, 2] * 3


def test_guided_chunks_shrink_towards_the_end_of_the_batch(accounts):
    """On an executor each chunk holds at most a (2 * workers)-th of the accounts not yet
    in a task (at least 1, at most chunk_size), and still never mixes universes."""
    tasks = batch_mod._make_tasks(accounts, b"x", chunk_size=3, shipped=True, workers=2)
    # by hand: 3 universes of 8 accounts; left 24, 21 -> 3, 3, then the group's last 2;
    # left 16, 13 -> 3, 3, then 2; left 8, 6 -> ceil(8/4) = 2, 2; left 4, 3, 2, 1 -> 1 each
    assert [len(t.positions) for t in tasks] == [3, 3, 2, 3, 3, 2, 2, 2, 1, 1, 1, 1]
    seen = [p for t in tasks for p in t.positions]
    assert seen == sorted(seen, key=lambda p: (p % 3, p))  # grouped, input order kept
    assert sorted(seen) == list(range(len(accounts)))
    for t in tasks:
        assert {tuple(accounts[p].state.assets) for p in t.positions} == {t.universe}
        assert [a.name for a in t.accounts] == [accounts[p].name for p in t.positions]


def test_executor_workers_read_from_the_executor(dask_client):
    from concurrent.futures import Executor, ThreadPoolExecutor

    with ProcessPoolExecutor(max_workers=3) as ex:
        assert batch_mod._executor_workers(ex) == 3
    with ThreadPoolExecutor(max_workers=5) as ex:
        assert batch_mod._executor_workers(ex) == 5
    assert batch_mod._executor_workers(dask_client.get_executor()) == 2  # the fixture's
    assert batch_mod._executor_workers(Executor()) == (os.cpu_count() or 1)


def test_one_rebalancer_copy_per_universe_and_process(accounts):
    batch_mod.clear_worker_cache()
    res = rebalance_many(accounts, REBALANCER, chunk_size=2)
    # serial: exactly one build (cache miss) per universe, every other account reuses it
    first = res.frame.groupby(res.frame["account"].map(
        {a.name: a.state.assets[0][0] for a in accounts}))["reused"].apply(list)
    for flags in first:
        assert not flags[0]
        assert all(flags[1:])
    assert (~res.frame["reused"]).sum() == 3
    # a second call with the same configuration re-uses the cached copies
    again = rebalance_many(accounts, REBALANCER, chunk_size=2)
    assert again.frame["reused"].all()
    # a different configuration does not
    other = dataclasses.replace(REBALANCER, config=RebalanceConfig(min_weight_change=0.0))
    assert (~rebalance_many(accounts, other).frame["reused"]).sum() == 3


def test_process_pool_builds_at_most_one_copy_per_universe_per_worker(accounts):
    batch_mod.clear_worker_cache()
    with ProcessPoolExecutor(max_workers=2) as ex:
        res = rebalance_many(accounts, REBALANCER, ex, chunk_size=2)
    f = res.frame.assign(universe=[a.state.assets[0][0] for a in accounts])
    builds = f[~f["reused"]].groupby(["worker", "universe"]).size()
    assert (builds == 1).all()
    assert len(builds) <= 2 * 3


def test_progress_bar_counts_accounts(accounts, capsys):
    pytest.importorskip("tqdm")
    rebalance_many(accounts[:6], REBALANCER, progress=True, chunk_size=4)
    err = capsys.readouterr().err
    assert "6/6" in err


# --------------------------------------------------------------- optimal rebalancer
def _optimal_setup(n_accounts: int = 16):
    """Small optimal problems: factor risk, spread + 3/2 impact, caps, turnover, sectors."""
    optimal = pytest.importorskip("rebalopt.rebalance.optimal")
    from rebalopt.constraints import CashFloor, GroupBounds, LongOnly, TurnoverLimit, WeightBounds
    from rebalopt.risk import FactorModel

    accs = make_accounts(n_accounts, {"U": 25, "V": 15}, seed=3)
    rng = np.random.default_rng(7)
    names = sorted({a for acc in accs for a in acc.state.assets})
    k = 3
    factors = [f"f{j}" for j in range(k)]
    risk = FactorModel(
        pd.DataFrame(rng.normal(0, 0.15, (len(names), k)), index=names, columns=factors),
        pd.DataFrame(np.eye(k), index=factors, columns=factors),
        pd.Series(rng.uniform(0.02, 0.08, len(names)), index=names),
    )
    sectors = {a: f"S{int(a[1:]) % 3}" for a in names}
    accs = [dataclasses.replace(acc, state=acc.state.replace(groups=sectors)) for acc in accs]
    reb = optimal.OptimalRebalancer(
        risk=risk, costs=[Spread(half_spread_bps=5.0), MarketImpact(coef=1.0)],
        constraints=[LongOnly(), CashFloor(), WeightBounds(upper=0.2), TurnoverLimit(cap=0.6),
                     GroupBounds(upper=0.25, lower=-0.25, relative=True)],
    )
    return accs, reb


def test_optimal_same_plans_serial_pool_and_dask(dask_client):
    accs, reb = _optimal_setup()
    batch_mod.clear_worker_cache()
    serial = rebalance_many(accs, reb, chunk_size=3)
    assert serial.ok, serial.errors
    # the oracle: a fresh copy planning each account directly matches to solver accuracy
    direct = dataclasses.replace(reb)
    for acc in accs:
        np.testing.assert_allclose(serial.plans[acc.name].trades * acc.state.prices,
                                   direct.plan(acc.state, acc.targets).trades * acc.state.prices,
                                   atol=1e-5 * acc.state.equity)
    with ProcessPoolExecutor(max_workers=2) as ex:
        assert_same_plans(rebalance_many(accs, reb, ex, chunk_size=3), serial)
    # chunking does not change the answer either
    assert_same_plans(rebalance_many(accs, reb, chunk_size=16), serial)
    assert_same_plans(rebalance_many(accs, reb, dask_client.get_executor(), chunk_size=3),
                      serial)


def test_optimal_pool_plans_equal_one_by_one_plans_bit_for_bit():
    """The oracle is the rebalancer itself: a fresh copy planning each account directly,
    one by one. The direct backend's answers depend on their inputs only, so a pool
    (guided chunks, each worker priming and keeping its own copy and solver, states
    shipped and given the worker's universe objects) returns the same bytes."""
    accs, reb = _optimal_setup(n_accounts=20)
    direct = dataclasses.replace(reb)
    expected = {a.name: direct.plan(a.state, a.targets) for a in accs}
    batch_mod.clear_worker_cache()
    with ProcessPoolExecutor(max_workers=2) as ex:
        res = rebalance_many(accs, reb, ex, chunk_size=4)
    assert res.ok, res.errors
    for acc in accs:
        got, want = res.plans[acc.name], expected[acc.name]
        assert got.trades.tobytes() == want.trades.tobytes(), acc.name
        assert got.targets.tobytes() == want.targets.tobytes(), acc.name
        assert got.info["objective"] == want.info["objective"], acc.name
        assert got.state is acc.state


def test_unpickled_tasks_share_the_universe_objects_and_callers_states_are_untouched():
    """A task that travelled (pickled) gets this process's first Index and group labels
    of its universe for every state (equal values: identity for the per-universe memos);
    a task holding the caller's states (serial, threads) leaves them as they are. Plans
    are bit for bit the direct calls' either way."""
    import pickle

    accs, reb = _optimal_setup(n_accounts=12)
    accs = [dataclasses.replace(a, state=a.state.replace()) for a in accs]  # own objects
    before = [(a.state.assets, a.state.groups) for a in accs]
    reb_bytes = pickle.dumps(reb)
    tasks = batch_mod._make_tasks(accs, reb_bytes, chunk_size=2, shipped=True, workers=2)
    batch_mod.clear_worker_cache()
    for t in tasks:  # as a thread pool runs them: the caller's objects
        _batch_worker._run_task(t)
    assert [(a.state.assets, a.state.groups) for a in accs] == before  # same objects
    batch_mod.clear_worker_cache()
    travelled = [pickle.loads(pickle.dumps(t)) for t in tasks]

    def objects() -> dict[tuple[str, ...], set[tuple[int, int]]]:
        seen: dict[tuple[str, ...], set[tuple[int, int]]] = {}
        for t in travelled:
            for a in t.accounts:
                seen.setdefault(t.universe, set()).add((id(a.state.assets),
                                                        id(a.state.groups)))
        return seen

    assert all(len(v) > 1 for v in objects().values())  # one copy per task and state
    outs = [o for t in travelled for o in _batch_worker._run_task(t)]
    assert len(objects()) == 2 and all(len(v) == 1 for v in objects().values())
    direct = dataclasses.replace(reb)
    for t in travelled:
        for pos, a in zip(t.positions, t.accounts):  # equal values, other objects
            assert tuple(a.state.assets) == t.universe == tuple(accs[pos].state.assets)
            assert list(a.state.groups) == list(accs[pos].state.groups)
    for o in outs:
        acc = accs[o.position]
        want = direct.plan(acc.state, acc.targets)
        assert o.plan.trades.tobytes() == want.trades.tobytes(), acc.name


def test_optimal_compiles_once_per_universe_per_process():
    accs, reb = _optimal_setup(n_accounts=12)
    batch_mod.clear_worker_cache()
    res = rebalance_many(accs, reb, chunk_size=2)  # 6 chunks per universe... all serial
    assert res.ok and reb.compilations == 0  # the caller's object is never used
    copies = list(_batch_worker._WORKER_CACHE.values())  # private: the per-process cache
    assert len(copies) == 2 and [c.compilations for c in copies] == [1, 1]
    assert (res.frame["compilations"] == 1).all()
    batch_mod.clear_worker_cache()
    with ProcessPoolExecutor(max_workers=2) as ex:
        res = rebalance_many(accs, reb, ex, chunk_size=2)
    f = res.frame.assign(universe=[a.state.assets[0][0] for a in accs])
    per_copy = f.groupby(["worker", "universe"])["compilations"].max()
    assert (per_copy == 1).all() and len(per_copy) <= 4


def test_optimal_per_account_restricted_list_and_failure():
    from rebalopt.constraints import Restricted, WeightBounds

    accs, reb = _optimal_setup(n_accounts=6)
    first = accs[0].state.assets[0]
    restricted = dataclasses.replace(accs[0], constraints=(Restricted(no_trade=[first]),))
    # every asset at least 50% of equity on a long-only cash account: infeasible
    broken = dataclasses.replace(accs[1], constraints=(WeightBounds(lower=0.5),))
    res = rebalance_many([restricted, broken, *accs[2:]], reb)
    free = rebalance_many([accs[0]], reb).plans[accs[0].name]
    assert free.trades[0] != 0.0  # unrestricted, the optimizer trades this asset ...
    assert res.plans[restricted.name].trades[0] == 0.0  # ... the account's list stops it
    assert list(res.errors) == [broken.name]
    assert res.errors[broken.name].type == "InfeasibleError"
    assert "WeightBounds" in res.errors[broken.name].message
    assert list(res.plans) == [restricted.name] + [a.name for a in accs[2:]]
    alone = rebalance_many(accs[2:], reb)  # same groups, same anchors, no failure
    for acc in accs[2:]:  # the failure did not disturb the others
        np.testing.assert_array_equal(res.plans[acc.name].trades, alone.plans[acc.name].trades)


def test_thread_pool_gives_identical_plans_on_the_cvxpy_path():
    """Threads never share a compiled problem (its Parameters are mutable): each thread
    gets its own copy, so a thread pool reproduces the serial plans exactly, also on the
    cvxpy path whose Parameters a shared copy would overwrite mid-solve."""
    from concurrent.futures import ThreadPoolExecutor

    base, reb = _optimal_setup()
    # many accounts on few universes, so concurrent chunks hit the same cached copy
    accs = [dataclasses.replace(a, name=f"{a.name}-{r}") for r in range(6) for a in base]
    reb = dataclasses.replace(reb, backend="cvxpy")
    batch_mod.clear_worker_cache()
    serial = rebalance_many(accs, reb, chunk_size=2)
    assert serial.ok, serial.errors
    batch_mod.clear_worker_cache()
    with ThreadPoolExecutor(max_workers=4) as ex:
        threaded = rebalance_many(accs, reb, ex, chunk_size=2)
    assert threaded.ok, threaded.errors
    assert_same_plans(threaded, serial)


# --------------------------------------------------------------- what travels
class _OwnState(NaiveRebalancer):
    """Plans from a copy of the state (not the account's own object)."""

    def plan(self, state, targets):
        return super().plan(state.replace(), targets)


def test_plans_come_back_with_the_callers_states_and_string_indexed_targets(accounts):
    """Targets travel as arrays and plans without their state (put back by the caller):
    the plans equal direct calls bit for bit (the oracle), each carries the caller's own
    state object, a Series with a string index or a NaN behaves as in a direct call,
    and a plan made from another state keeps that state."""
    names = list(accounts[0].state.assets)
    s = pd.Series(accounts[0].targets.to_numpy(), index=pd.Index(names, dtype="str"))
    bad = s.copy()
    bad.iloc[3] = np.nan
    accs = [Account("str", accounts[0].state, s), Account("nan", accounts[0].state, bad),
            *accounts[1:6]]
    with ProcessPoolExecutor(max_workers=2) as ex:
        for executor in (None, ex):
            batch_mod.clear_worker_cache()
            res = rebalance_many(accs, REBALANCER, executor, chunk_size=3)
            for acc in accs:
                if acc.name == "nan":
                    with pytest.raises(InputError) as err:
                        REBALANCER.plan(acc.state, acc.targets)
                    assert res.errors["nan"].type == "InputError"
                    assert res.errors["nan"].message == str(err.value)
                    continue
                direct = REBALANCER.plan(acc.state, acc.targets)
                got = res.plans[acc.name]
                assert got.state is acc.state
                assert got.trades.tobytes() == direct.trades.tobytes()
                assert got.targets.tobytes() == direct.targets.tobytes()
            own = rebalance_many(accs[2:4], _OwnState(config=REBALANCER.config,
                                                      costs=REBALANCER.costs), executor)
            for acc in accs[2:4]:
                got = own.plans[acc.name]
                assert got.state is not acc.state
                assert got.state.holdings.tobytes() == acc.state.holdings.tobytes()
