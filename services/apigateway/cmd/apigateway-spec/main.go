// Command apigateway-spec writes the gateway's OpenAPI documents (openapi.json,
// 3.1, and openapi-3.0.json, 3.0.3) into a folder: `go generate
// ./services/apigateway` refreshes the checked-in copies under openapi/.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/voltageems/voltage/services/apigateway"
)

func main() {
	out := flag.String("out", "openapi", "folder to write openapi.json and openapi-3.0.json into")
	flag.Parse()
	v31, v30, err := apigateway.Spec()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for name, b := range map[string][]byte{"openapi.json": v31, "openapi-3.0.json": v30} {
		if err := os.WriteFile(filepath.Join(*out, name), b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
