"""How fast the retention desk renders its list: 500 rows of the day's list, as a logged-in lead.

Run with `make bench-desk` after `make run` (it reads the list the daily job wrote to the
database). Prints the median time of rendering the list page with 500 rows through the desk's ASGI
app (query, template, response), against the target of 300 ms, and the time of the bare database
query of the same rows, measured in the same run, as the baseline.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from starlette.testclient import TestClient

    from churn.config import load_config
    from serving.desk.app import create_app
    from serving.desk.data import ListQuery
    from serving.desk.users import UserStore

    config = load_config()
    users = Path(tempfile.mkdtemp()) / "users.json"
    config = config.model_copy(
        update={"desk": config.desk.model_copy(update={"users_file": str(users), "page_size": args.rows})}
    )
    UserStore(users).add("bench-lead", "lead", "bench password only")
    app = create_app(config, "p" * 24, "k" * 40)
    data = app.state.desk.data
    as_of = data.latest_as_of()
    if as_of is None:
        raise SystemExit("no list in the database: run `make run` first")
    client = TestClient(app, base_url="http://127.0.0.1")
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/desk/login").text).group(1)
    client.post("/desk/login", data={"csrf": token, "name": "bench-lead", "password": "bench password only"})

    def timed(work) -> float:
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            work()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    rendered = {}

    def page() -> None:
        answer = client.get("/desk/list?sort=probability")
        rendered["rows"] = answer.text.count("<tr>") - 1
        assert answer.status_code == 200

    query = ListQuery(sort="probability", descending=True, page_size=args.rows)
    baseline = timed(lambda: data.list_page(as_of, query, None))
    render = timed(page)
    print(f"list of {as_of}: {rendered['rows']} rows per page, median of {args.repeat}")
    print(f"database query alone     {1000 * baseline:8.1f} ms   (baseline)")
    print(
        f"list page rendered       {1000 * render:8.1f} ms   ({render / baseline:.1f}x the query; "
        f"target under 300 ms: {'met' if render < 0.3 else 'NOT met'})"
    )
    if args.json:
        figures = {"as_of": str(as_of), "rows": rendered["rows"], "query_ms": 1000 * baseline}
        args.json.write_text(json.dumps(figures | {"page_ms": 1000 * render}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
