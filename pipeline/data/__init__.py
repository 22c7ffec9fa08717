"""The competition's files: read (CSV -> frame), schema (column kinds and their report),
validate (train/test/sample checks and coercion), prepared (the prepare stage's output)."""
