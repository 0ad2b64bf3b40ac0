module github.com/voltageems/voltage/web

go 1.26.8
