// The Trainer module: see docs/architecture.md. (Files arrive with the issue that builds it.)
