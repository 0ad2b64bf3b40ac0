package keyspace

// Keys of rulesrv (automation rules) beyond DESIGN §4's table (rule:{id}:exec is
// there: RuleExecution).
const (
	// RuleEvents is the stream of everything rules do: firings, resets, inputs that
	// blocked a rule, action outcomes, conflicts lost, published events. Capped.
	RuleEvents = "rule:events"
)
