"""One module per CLI subcommand; each dvc.yaml stage is one of them. Each has one entry,
`run`, that reads the stage's inputs, calls the pure code and writes its outputs."""
