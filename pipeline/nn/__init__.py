"""The MLP: the batched module (model), its one training loop (train), one-hot inputs read
as lookups (onehot)."""
