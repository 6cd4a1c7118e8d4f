"""Taxes: tax lots, lot relief, realized gains, the wash-sale rule and a lot ledger."""

from rebalopt.taxes.ledger import LotLedger
from rebalopt.taxes.lots import Lot, TaxLots, read_lots_csv
from rebalopt.taxes.rates import TaxRates
from rebalopt.taxes.relief import Realized, is_long_term, realize, relieve, select_lots
from rebalopt.taxes.wash import (
    US_WASH_SALE,
    OpenLoss,
    WashSale,
    WashSaleRule,
    wash_on_buy,
    wash_on_sale,
)

__all__ = [
    "US_WASH_SALE",
    "Lot",
    "LotLedger",
    "OpenLoss",
    "Realized",
    "TaxLots",
    "TaxRates",
    "WashSale",
    "WashSaleRule",
    "is_long_term",
    "read_lots_csv",
    "realize",
    "relieve",
    "select_lots",
    "wash_on_buy",
    "wash_on_sale",
]
