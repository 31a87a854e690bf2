"""Parse command lines with each command's own parser, without running the commands: ``python -m
tests.support.parse_only`` reads ``[[module, [args...]], ...]`` as JSON on stdin and prints, as JSON, the error
message for each line (``null`` when its parser accepted it).

Each module runs as ``python -m`` would run it, until its parser has parsed: ``ArgumentParser.parse_args`` is
replaced by one that parses and then stops the module. So a page that shows a flag or a command which no longer
exists fails, while nothing is trained, served or written.
"""

import argparse
import contextlib
import io
import json
import runpy
import sys


class Parsed(BaseException):
    """Raised once the command's parser accepted the line; a BaseException, so the command's own handlers of
    Exception do not catch it."""


def check(module: str, args: list[str]) -> str | None:
    real_parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(parser, argv=None, namespace=None):
        real_parse_args(parser, argv, namespace)
        raise Parsed

    argparse.ArgumentParser.parse_args = parse_then_stop
    sys.argv = [module, *args]
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    except Parsed:
        return None
    except SystemExit as exit:
        message = errors.getvalue().strip().splitlines()
        return message[-1] if message else f"{module} exited with status {exit.code} before parsing its flags"
    except ImportError as error:
        return f"no command {module}: {error}"
    finally:
        argparse.ArgumentParser.parse_args = real_parse_args
    return f"{module} ran to its end without parsing a command line"


def main() -> None:
    lines = json.load(sys.stdin)
    print(json.dumps([check(module, args) for module, args in lines]))


if __name__ == "__main__":
    main()
