// Package demo is the offline quickstart's world: an embedded upstream
// registry (go-containerregistry's, loopback only), a signed and an unsigned
// image pushed into it with a key made on the spot, and the config, policy
// and public key that make portcullis trust that key. `portcullis demo`
// runs it; tests across the module use it as a small, real fixture.
//
// demo.go holds all of it: StartUpstream, Seed (with a cosign-format
// signature made by hand, so the binary needs no signing tool), WriteFiles
// and Check (pull both images through a proxy the way crane does).
package demo
