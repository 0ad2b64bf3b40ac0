package rulesrv_test

// virtualSite is a small plant on virtual channels: rulesrv runs alone and the
// tests write the instance hashes as modsrv would; commands pile up in the
// channel streams, where the tests count them.
var virtualSite = files{
	"site.yaml": "site: {id: test-site, name: Test}\nredis: {url: \"{{REDIS}}\"}\n",
	"comsrv/channels.yaml": `channels:
  - {id: 1, name: plant, protocol: virtual}
  - {id: 9, name: probe, protocol: virtual}
`,
	"comsrv/1/telemetry.csv":  "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,grid_power,1,0,kW,0,float\n2,soc,1,0,%,0,float\n3,pcs_power,1,0,kW,0,float\n",
	"comsrv/1/adjustment.csv": "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,pcs_setpoint,1,0,kW,0,float\n2,spare,1,0,kW,0,float\n",
	"comsrv/1/control.csv":    "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,pcs_start,1,0,,0,bool\n",
	"comsrv/9/telemetry.csv":  "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,probe,1,0,,0,float\n",
	"modsrv/instances.yaml": `instances:
  - {id: 1, name: meter, product: meter}
  - {id: 2, name: bat, product: battery}
  - {id: 3, name: pcs, product: pcs, properties: {rated_power: 100}}
`,
	"modsrv/instances/meter/channel_routing.csv": "channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n1,T,1,M,active_power\n",
	"modsrv/instances/bat/channel_routing.csv":   "channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n1,T,2,M,soc\n",
	"modsrv/instances/pcs/channel_routing.csv": `channel_id,channel_type,channel_point_id,instance_type,instance_point_id
1,T,3,M,active_power
1,A,1,A,active_power_setpoint
1,C,1,A,start
`,
	// The probe fires on every change of ch9.T1: tests wait for it to know that
	// everything written before was evaluated (stack.sync).
	"rulesrv/rules/probe.yaml": `id: probe
condition: ch9.T1 > 0
level: true
actions:
  - event: {name: probe}
`,
}

// Instance and measurement ids of virtualSite.
const (
	meter = 1
	bat   = 2
	pcs   = 3

	mGrid = 5 // meter.active_power
	mSOC  = 1 // battery.soc
)
