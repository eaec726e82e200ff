"""moto's server for DynamoDB, SES and Secrets Manager on one port, printing every email it is asked to send.

Runs single-threaded (werkzeug's run_simple with threaded=False): moto's threaded server has no lock around
DynamoDB's condition checks, and race tests need them to be atomic (DESIGN §3).
"""

import argparse
import html
import re
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.ses import models as ses_models
from werkzeug.serving import run_simple


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--quiet", action="store_true", help="do not print each email")
    args = parser.parse_args()
    if not args.quiet:
        print_sent_email()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=False, use_reloader=False)


if __name__ == "__main__":
    main()
