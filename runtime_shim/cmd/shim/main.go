// Command shim is the entrypoint of every image converted by sconify (/sconify/bin/shim). It
// measures the image, attests to the CAS through the LAS, decrypts the protected directories,
// and execs the application with the session's command and environment. It has no flags: the
// SCONE_* and SCONIFY_* environment variables configure it (docs/dev/shim.md).
package main

import (
	"os"

	"sconify/runtime_shim/internal/fatal"
	"sconify/runtime_shim/internal/launcher"
)

func main() {
	if err := launcher.Run(os.LookupEnv, os.Stdout, os.Stderr); err != nil {
		fatal.Exit(err)
	}
}
