module github.com/voltageems/voltage/edge

go 1.26.8
