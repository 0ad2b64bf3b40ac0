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

	// AlarmOutbox is alarmsrv's durable notification outbox: one entry per
	// notification and channel (fields channel, n = the notification JSON),
	// appended in the same transaction as the alarm transition or the request's
	// XACK, read with the consumer group OutboxGroup and acknowledged (and
	// deleted) only after the channel accepted it, so a restart neither loses nor
	// repeats a delivered notification.
	AlarmOutbox = "alarm:outbox"
	// OutboxGroup is the consumer group alarmsrv reads AlarmOutbox with.
	OutboxGroup = "alarmsrv"
)
