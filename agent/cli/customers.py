"""``loyalty-agent customers lookup``: find a customer by document or by name."""
from __future__ import annotations

import argparse

from agent.cli.common import add_common_options, load


def cmd_customers_lookup(args: argparse.Namespace) -> int:
    from agent.station import customer_service, open_database

    # Only the customer registry: building the whole agent (build_station) would wire devices,
    # create their key files and print their warnings, none of which a lookup needs.
    settings = load(args)
    db = open_database(settings, create=False)
    try:
        customers = customer_service(db, settings)
        if args.q:
            items = customers.search(args.q)
            for item in items:
                print(item.model_dump_json())
            return 0 if items else 1
        customer = customers.find_by_document(args.country, args.type, args.number)
        print(customer.model_dump_json(indent=2))
    finally:
        db.close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    customers = sub.add_parser("customers", help="clientes").add_subparsers(dest="customers_cmd", required=True)
    p = customers.add_parser("lookup", help="buscar un cliente por documento o por nombre")
    add_common_options(p)
    p.add_argument("--country", default="CL")
    p.add_argument("--type", default="RUT")
    p.add_argument("--number")
    p.add_argument("-q", help="buscar por nombre, documento o ID de fidelización")
    p.set_defaults(func=cmd_customers_lookup)
