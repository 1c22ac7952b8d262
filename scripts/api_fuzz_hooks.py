"""schemathesis hooks for scripts/api-fuzz.sh.

The fuzzer signs in as a System administrator application. Every other
record is fair game; its own application is not: regenerating its own
secret (which the API allows, loudly) would revoke the fuzzer's token and
leave every later request untested. The server's refusals on that
application (the last administrator cannot be disabled, deleted or lose
its rule) are covered by the integration tests.
"""

import os

import schemathesis

OWN_APP_ID = os.environ["APPAUTH_FUZZ_OWN_APP_ID"]


@schemathesis.hook
def filter_path_parameters(context, path_parameters):
    return (path_parameters or {}).get("id") != OWN_APP_ID
