module github.com/voltageems/voltage/cloud

go 1.26.8
