// Package cli owns charla's command line: it parses arguments and runs the
// subcommands, one file each. init, run and bare charla work on a home
// directory themselves; every other subcommand is a client of the running
// node's local API (package api), found through <home>/api.json.
package cli
