"""schemathesis hooks for scripts/api-fuzz.sh.

The fuzzer signs in as a System administrator application. Every other
record is fair game; its own application is not: regenerating its own
secret (which the API allows, loudly) would revoke the fuzzer's token and
leave every later request untested. The server's refusals on that
application (the last administrator cannot be disabled, deleted or lose
its rule) are covered by the integration tests.

Generated ids never name it (`filter_path_parameters`), but ids taken from
answers can: the OpenAPI links and schemathesis' own inference pass the
first application of a listing, often this one, to the next request. So
`before_call` turns any change aimed at it into a request for an id that
does not exist (a documented 404); reading it stays allowed.
"""

import os
import uuid

import schemathesis

OWN_APP_ID = os.environ["APPAUTH_FUZZ_OWN_APP_ID"].lower()


@schemathesis.hook
def filter_path_parameters(context, path_parameters):
    return str((path_parameters or {}).get("id", "")).lower() != OWN_APP_ID


@schemathesis.hook
def before_call(context, case, kwargs):
    params = case.path_parameters or {}
    if case.method.upper() != "GET" and str(params.get("id", "")).lower() == OWN_APP_ID:
        params["id"] = str(uuid.uuid4())
