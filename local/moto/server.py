"""moto's server for DynamoDB, SES, SQS and Secrets Manager on one port, printing every email it is asked to send.

Runs single-threaded (werkzeug's run_simple with threaded=False): moto's threaded server has no lock around
DynamoDB's condition checks, and race tests need them to be atomic (DESIGN §3).
"""

import argparse
import html
import json
import re
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.ses import models as ses_models
from werkzeug.serving import WSGIRequestHandler, run_simple


def print_sent_email() -> None:
    original = ses_models.SESBackend.send_email

    def send_email(self, source, subject, body, destinations):  # type: ignore[no-untyped-def]
        message = original(self, source=source, subject=subject, body=body, destinations=destinations)
        text = html.unescape(re.sub(r"<[^>]+>", "\n", body))
        text = "\n".join(line.strip() for line in text.splitlines() if line.strip())
        to = ", ".join(address for addresses in destinations.values() for address in addresses)
        print(f"\n=== email to {to}: {subject}\n{text}\n===\n", file=sys.stderr, flush=True)
        return message

    ses_models.SESBackend.send_email = send_email  # type: ignore[method-assign]


def track_only_sent_email() -> None:
    """Stops moto from keeping every model instance it ever made, except sent emails (the view below reads them).

    moto's BaseModel appends each instance to a class-level list for its dashboard and never lets go, so every
    DynamoDB item version written stays in memory: a full test run grew the server past 20 GB and the machine
    into swap. Nothing here reads that list but the sent-email view.
    """
    from moto.core import common_models

    def new(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
        instance = object.__new__(cls)
        if cls.__module__.startswith("moto.ses."):
            cls.instances_tracked.append(instance)
        return instance

    common_models.BaseModel.__new__ = staticmethod(new)  # type: ignore[method-assign,assignment]


def transactions_without_table_copies() -> None:
    """Replaces moto's TransactWriteItems with one that copies no table.

    moto deep-copies the whole table once per item of every transaction, to roll back a failed one: the cost of a
    transaction grows with everything the test run has written, and a full run spent most of its time in those
    copies. This version does what DynamoDB does: it checks every condition against the state before the
    transaction (the items are distinct, so none sees another's write), writes nothing when any fails, and only
    then writes, remembering each touched item to put back if a write is refused.
    """
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import DynamoDBBackend

    def transact_write_items(self, transact_items):  # type: ignore[no-untyped-def]
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        seen = set()
        planned = []
        errors = []
        for item in transact_items:
            if len(item) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            table = self.get_table(table_name)
            if op_type == "Put":
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            unique = (str(table_name), str(dict(sorted(key.items()))))
            if unique in seen:
                raise MultipleTransactionsException()
            seen.add(unique)
            current = self.get_item(table_name, key)
            condition = op.get("ConditionExpression")
            if condition is not None:
                check = get_filter_expression(
                    condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                )
                if not check.expr(current):
                    old = None
                    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                        old = current.to_json()["Attributes"]
                    failed = ConditionalCheckFailed(item=old)
                    errors.append(("ConditionalCheckFailed", str(failed.message), old))
                    continue
            errors.append((None, None, None))
            before = current.to_json()["Attributes"] if current else None
            planned.append((op_type, op, table_name, key, before))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        done = []
        try:
            for op_type, op, table_name, key, before in planned:
                names = op.get("ExpressionAttributeNames")
                values = op.get("ExpressionAttributeValues")
                if op_type == "Put":
                    self.put_item(table_name, op["Item"])
                elif op_type == "Delete":
                    self.delete_item(table_name, key)
                elif op_type == "Update":
                    self.update_item(
                        table_name,
                        key,
                        update_expression=op["UpdateExpression"],
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
                done.append((table_name, key, before))
        except Exception:
            for table_name, key, before in reversed(done):
                if before is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, before)
            raise

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def with_sent_email_view(app):  # type: ignore[no-untyped-def]
    """Serves GET /moto-api/keygate/sent-email: the `ses.Message` part of /moto-api/data.json, alone.

    data.json also serialises every DynamoDB item moto holds, which takes seconds once a test run has filled the
    table, and the single-threaded server answers nothing else meanwhile. This is the same model data, filtered.
    """
    from moto.core.model_instances import model_data

    def view(environ, start_response):  # type: ignore[no-untyped-def]
        if environ.get("PATH_INFO") != "/moto-api/keygate/sent-email":
            return app(environ, start_response)
        model = model_data.get("ses", {}).get("Message")
        messages = [
            {
                "id": m.id,
                "source": m.source,
                "subject": m.subject,
                "body": m.body,
                "destinations": m.destinations,
            }
            for m in (model.instances_tracked if model else [])
        ]
        body = json.dumps(messages).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return view


class QuietPollHandler(WSGIRequestHandler):
    """Leaves the local mailer's polls out of the request log: it asks SQS several times a second."""

    def log_request(self, code="-", size="-"):  # type: ignore[no-untyped-def]
        if self.headers.get("X-Amz-Target") in ("AmazonSQS.ReceiveMessage", "AmazonSQS.GetQueueAttributes"):
            return
        super().log_request(code, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--quiet", action="store_true", help="do not print each email")
    args = parser.parse_args()
    track_only_sent_email()
    transactions_without_table_copies()
    if not args.quiet:
        print_sent_email()
    app = with_sent_email_view(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=False, use_reloader=False, request_handler=QuietPollHandler)


if __name__ == "__main__":
    main()
