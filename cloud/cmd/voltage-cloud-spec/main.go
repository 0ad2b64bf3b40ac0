// Command voltage-cloud-spec writes the cloud API's OpenAPI documents
// (cloud-openapi.json, 3.1, and cloud-openapi-3.0.json, 3.0.3) into a folder:
// `go generate ./cloud/hub` refreshes the checked-in copies under openapi/.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/voltageems/voltage/cloud/hub"
)

func main() {
	out := flag.String("out", "openapi", "folder to write the cloud API documents into")
	flag.Parse()
	v31, v30, err := hub.Spec()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for name, b := range map[string][]byte{hub.SpecFile31: v31, hub.SpecFile30: v30} {
		if err := os.WriteFile(filepath.Join(*out, name), b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
