package custody

// OwnHash is ownHash, for the tests of package custody_test.
var OwnHash = ownHash
