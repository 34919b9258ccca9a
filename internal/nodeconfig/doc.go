// Package nodeconfig writes and checks the runtime configuration that makes
// a node pull images only through the proxy, and reads the result of a
// canary pull.
//
// The model is docs/design.md, fact 1: the proxy must be the registry itself, never a
// mirror in front of one. containerd, dockerd and containers/image all treat
// a mirror's error — a 403 included — as "try the next host" and fall back to
// the real registry, so a mirror that refuses an image enforces nothing.
//
//   - The generators (ContainerdTree, DockerTree, PodmanConf) write files in
//     which the proxy is the only host: containerd's hosts.toml with the proxy
//     as server and as the only [host], dockerd's daemon.json without
//     registry-mirrors, and a registries.conf whose locations are the proxy.
//   - The checks (CheckCertsDir, CheckContainerdConfig, CheckDockerConfig,
//     CheckPodmanConfig) read a node's files as the runtime would and return
//     one Finding per way a pull can go around the proxy. What the
//     generators write, the checks accept (the tests hold them to that).
//   - ClassifyCanary reads the output of a pull of the reserved canary
//     repository, which the proxy always refuses: only a refusal that is
//     provably the proxy's counts as enforcement.
//
// Nothing here parses flags or prints advice; cmd/portcullis does. Error
// messages name the command-line flag a value came from (--proxy,
// --registry), because that is how users see them.
package nodeconfig
