package keyspace

// Keys of modsrv (thing models, routing, calculations) beyond DESIGN §4's table.
const (
	// InstanceActionStream is the stream of instance actions (DESIGN §5): any
	// producer appends, modsrv reads it with the consumer group ActionGroup, checks
	// the product's limits and submits the routed channel command with the same id.
	InstanceActionStream = "inst:actions"
	// ActionGroup is the consumer group modsrv reads InstanceActionStream with.
	ActionGroup = "modsrv"
	// CalculationState is the hash calculation name → JSON of the state of its
	// stateful functions (integrators, windows), so they continue after a restart.
	CalculationState = "modsrv:calc:state"
)

// InstanceMeasurementQuality is the hash measurement id → quality, holding only
// measurements whose quality is not good (like comsrv:{ch}:T:q).
func InstanceMeasurementQuality(id uint32) string { return InstanceMeasurements(id) + ":q" }
