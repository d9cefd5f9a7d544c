"""Generator: messages.proto + a function manifest -> typed Python and module.yaml."""
