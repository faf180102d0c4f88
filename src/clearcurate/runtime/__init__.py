"""Where and on which model a stage's model work runs: the only readers of `engine` (`sessions`), and, through
`clearcurate.llm.factory`, of `model.backend` and `scorer`. Stages reach a model or an engine through here only
(tests/unit/test_import_rules.py)."""
