package keyspace

// Keys of alarmsrv beyond DESIGN §4's table (alarm:active and alarm:events are there).
const (
	// NotificationRequests is the stream of notifications other services ask for
	// (a rule's "notify" action): alarmsrv reads it with the consumer group
	// NotificationGroup and sends each through its notification routing (severity,
	// instance, quiet hours, rate limits), exactly like an alarm's notification.
	NotificationRequests = "alarm:notify"
	// NotificationGroup is the consumer group alarmsrv reads NotificationRequests with.
	NotificationGroup = "alarmsrv"
)
