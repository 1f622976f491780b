package dynamostore

// PendingShard is the by_pending shard of an order id, for the tests that
// need two orders in one shard.
var PendingShard = pendingPK
