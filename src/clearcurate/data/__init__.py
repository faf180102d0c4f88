"""The user's data and what is made of it: reading the input formats (ingest), the Great Expectations gates
(expectations), row-level diffs across git revisions (versioning), plot data (reports), and the noisy
datasets with known labels that `clearcurate make-squad-n` builds (noisy_data)."""
