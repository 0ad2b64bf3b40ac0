module github.com/voltageems/voltage/services/comsrv

go 1.26.8

require (
	github.com/goburrow/serial v0.1.0 // indirect
	github.com/simonvetter/modbus v1.6.4 // indirect
	github.com/voltageems/voltage/shared v0.0.0
)

replace github.com/voltageems/voltage/shared => ../../shared
