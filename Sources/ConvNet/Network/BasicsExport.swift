// ConvNet's public API speaks Basics' types (`Parameters.fill` takes a `SeededGenerator`), so whoever imports
// ConvNet sees Basics too, as if it had imported it.
@_exported import Basics
