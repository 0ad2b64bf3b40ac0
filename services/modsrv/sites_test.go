package modsrv_test

// deviceSite is a PV plant on one Modbus channel served by voltsim: two
// inverters (slaves 1 and 2), modelled as pv1 and pv2 under a station.
var deviceSite = files{
	"site.yaml": "site: {id: test-site, name: Test}\nredis: {url: \"{{REDIS}}\"}\n",
	"comsrv/channels.yaml": `channels:
  - id: 1
    name: pv
    protocol: modbus_tcp
    parameters: {host: 127.0.0.1, port: {{PORT}}, poll_interval_ms: 100, timeout_ms: 1000}
`,
	"comsrv/1/telemetry.csv": `point_id,signal_name,scale,offset,unit,reverse,data_type
1,pv1_power,0.1,0,kW,0,float
2,pv1_voltage,0.1,0,V,0,float
3,pv2_power,0.1,0,kW,0,float
`,
	"comsrv/1/signal.csv":     "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,pv1_running,1,0,,0,bool\n",
	"comsrv/1/adjustment.csv": "point_id,signal_name,scale,offset,unit,reverse,data_type,min_value,max_value\n1,pv1_limit,1,0,%,0,float,0,100\n",
	"comsrv/1/control.csv":    "point_id,signal_name,scale,offset,unit,reverse,data_type,control_type\n1,pv1_enable,1,0,,0,bool,latching\n",
	"comsrv/1/mapping/telemetry_mapping.csv": `point_id,slave_id,function_code,register_address,data_type,byte_order,bit_position
1,1,4,0,uint16,AB,
2,1,4,1,uint16,AB,
3,2,4,0,uint16,AB,
`,
	"comsrv/1/mapping/signal_mapping.csv":     "point_id,slave_id,function_code,register_address,data_type,byte_order,bit_position\n1,1,2,0,bool,,\n",
	"comsrv/1/mapping/adjustment_mapping.csv": "point_id,slave_id,function_code,register_address,data_type,byte_order,bit_position\n1,1,3,10,uint16,AB,\n",
	"comsrv/1/mapping/control_mapping.csv":    "point_id,slave_id,function_code,register_address,data_type,byte_order,bit_position\n1,1,1,0,bool,,\n",
	"modsrv/instances.yaml": `instances:
  - {id: 1, name: station, product: station}
  - {id: 2, name: pv1, product: pv_inverter, parent: station, properties: {rated_power: 100}}
  - {id: 3, name: pv2, product: pv_inverter, parent: station, properties: {rated_power: 0}}
`,
	"modsrv/instances/pv1/channel_routing.csv": `channel_id,channel_type,channel_point_id,instance_type,instance_point_id,description
1,T,1,M,active_power,
1,T,2,M,dc_voltage,
1,S,1,M,running,
1,A,1,A,power_limit,
1,C,1,A,enable,
`,
	"modsrv/instances/pv2/channel_routing.csv": "channel_id,channel_type,channel_point_id,instance_type,instance_point_id\n1,T,3,M,1\n",
	"modsrv/calculations.yaml": `calculations:
  - name: total_pv
    instance: station
    measurement: pv_power
    expression: sum("product:pv_inverter", "active_power")
  - name: pv_energy
    instance: station
    measurement: pv_energy
    expression: integrate(station.pv_power)
  - name: pv1_load
    instance: pv1
    measurement: load_factor
    expression: pv1.active_power / pv1.rated_power * 100
  - name: pv2_load
    instance: pv2
    measurement: load_factor
    expression: pv2.active_power / pv2.rated_power * 100
  - name: grid
    instance: station
    measurement: grid_power
    expression: pv1.temperature * 2
`,
}

// Instance and measurement ids of deviceSite.
const (
	station = 1
	pv1     = 2
	pv2     = 3

	mPVPower    = "1" // station.pv_power
	mPVEnergy   = "5" // station.pv_energy
	mGridPower  = "3" // station.grid_power
	mActive     = "1" // pv_inverter.active_power
	mLoadFactor = "10"
	mRunning    = "8"
)

// virtualSite has the same model on a virtual channel: no device, the tests write
// the channel hashes themselves as comsrv would.
var virtualSite = merge(deviceSite, files{
	"comsrv/channels.yaml":                    "channels:\n  - {id: 1, name: pv, protocol: virtual}\n",
	"comsrv/1/mapping/telemetry_mapping.csv":  "",
	"comsrv/1/mapping/signal_mapping.csv":     "",
	"comsrv/1/mapping/adjustment_mapping.csv": "",
	"comsrv/1/mapping/control_mapping.csv":    "",
	"comsrv/1/control.csv":                    "point_id,signal_name,scale,offset,unit,reverse,data_type\n1,pv1_enable,1,0,,0,bool\n",
})
