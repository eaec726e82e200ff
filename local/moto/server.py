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
    if not args.quiet:
        print_sent_email()
    app = with_sent_email_view(DomainDispatcherApplication(create_backend_app))
    run_simple(args.host, args.port, app, threaded=False, use_reloader=False, request_handler=QuietPollHandler)


if __name__ == "__main__":
    main()
