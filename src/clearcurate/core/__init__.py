"""Pure decision logic and maths: records and outcomes, the confidence math and presets, generation budgets,
the defect checks (the arithmetic check among them), the curation decisions, the evaluation metrics and the
prompt templates. Nothing here loads or calls a model (tests/unit/test_import_rules.py), so all of it is
tested without one."""
