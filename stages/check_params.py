"""DVC stage `check-params`: validate the whole params file before any other stage runs.

DVC deletes a stage's outputs just before running its cmd, so a stage that found a bad value
itself would already have lost its previous outputs. This stage depends on the whole params file
and every root stage depends on its marker, so `dvc repro` runs it first and stops here, with one
line per bad key, before it touches another stage. The marker's content never depends on the
params (downstream stages do not rerun because of it), and it is `persist`ed in dvc.yaml: a failed
check leaves it in place.
"""

from __future__ import annotations

from clearcurate import config as params
from clearcurate.core.records import write_json
from clearcurate.pipeline import stage_args


def main() -> None:
    args = stage_args(__doc__, "params", "marker")
    try:  # the whole file, conflicts included; no model code and no DVC API: the check takes about a second
        params.load_file(args.params)
    except params.ParamsError as err:
        raise SystemExit(f"check-params: {err}") from None
    write_json(args.marker, {"params": "valid"})  # the same whatever the params: it reruns nothing downstream


if __name__ == "__main__":
    main()
