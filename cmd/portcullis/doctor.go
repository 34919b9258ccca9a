package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/internal/nodeconfig"
)

type doctorOptions struct {
	proxy            string
	registries       []string
	containerdDir    string
	containerdConfig string
	containerdAddr   string
	dockerConfig     string
	podmanConfig     string
	canary           bool
	canaryImages     []string
	runtimes         []string
	timeout          time.Duration
	kube             kubeDoctorOptions // doctor_kube.go
}

// cmdRunner runs a client command with extra environment variables and
// returns its combined output; a non-nil error means it did not exit 0.
type cmdRunner func(ctx context.Context, env []string, name string, args ...string) (string, error)

func execRunner(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func doctorCmd() *cobra.Command { return newDoctorCmd(execRunner) }

func newDoctorCmd(run cmdRunner) *cobra.Command {
	var o doctorOptions
	cmd := &cobra.Command{
		Use:   "doctor --proxy URL [--containerd-dir DIR] [--containerd-config F] [--docker-config F] [--podman-config F] [--canary]",
		Short: "Find runtime configuration that pulls around the proxy; exit 0 when there is none, 1 with one line per finding",
		Long: `doctor reads a node's runtime configuration and reports every way a pull can
bypass the proxy: a containerd hosts.toml whose server is not the proxy (a mirror with
upstream fallback), a missing _default, a registry directory without hosts.toml, CRI's
deprecated registry.mirrors or a missing config_path, Docker registry-mirrors, a podman
[[registry.mirror]] or a location that is not the proxy.

--canary then pulls <registry>/portcullis/canary:deny with each --runtime, as the node
would. The proxy always refuses that repository; a pull that succeeds reached something
else. Push any image to <registry>/portcullis/canary:deny on every upstream, so that a
bypass really would succeed (a missing canary only shows up as "inconclusive").

--kubernetes instead reads the cluster's admission webhook configurations and says,
for each portcullis webhook, what is excluded, its failure policy, and whether its
caBundle verifies the serving certificate; kube-system not excluded (lock-out) and
failurePolicy Ignore (fails open) are findings.`,
		Args: usageArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.kube.enabled {
				return runKubeDoctor(cmd.Context(), o.kube, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			return runDoctor(cmd.Context(), o, run, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.proxy, "proxy", "", "the proxy's URL as nodes reach it, http(s)://host[:port]")
	f.StringArrayVar(&o.registries, "registry", nil, "a registry that must go through the proxy (repeatable): podman coverage, canary images")
	f.StringVar(&o.containerdDir, "containerd-dir", "", "containerd hosts directory to check (e.g. /etc/containerd/certs.d, or /etc/docker/certs.d for Docker's containerd store)")
	f.StringVar(&o.containerdConfig, "containerd-config", "", "containerd config.toml to check (its CRI config_path directories are checked too)")
	f.StringVar(&o.containerdAddr, "containerd-address", "", "containerd socket for the ctr/crictl canary (default: their own default)")
	f.StringVar(&o.dockerConfig, "docker-config", "", "dockerd daemon.json to check")
	f.StringVar(&o.podmanConfig, "podman-config", "", "registries.conf to check (drop-ins in registries.conf.d beside it too)")
	f.BoolVar(&o.canary, "canary", false, "pull the reserved canary the way the node would; success means the proxy is bypassed")
	f.StringArrayVar(&o.canaryImages, "canary-image", nil, "canary reference(s) (default <registry>/portcullis/canary:deny per --registry, docker.io if none; PROXY/<registry>/… for docker)")
	f.StringArrayVar(&o.runtimes, "runtime", nil, "client for the canary: ctr, crictl, docker, podman, skopeo or crane (repeatable; default from the configs given)")
	f.DurationVar(&o.timeout, "timeout", 2*time.Minute, "time allowed for each canary pull")
	f.BoolVar(&o.kube.enabled, "kubernetes", false, "check the cluster's admission webhook configurations instead of a node: exclusions, failure policy, caBundle")
	f.StringVar(&o.kube.kubeconfig, "kubeconfig", "", "with --kubernetes: kubeconfig (default KUBECONFIG, else in-cluster)")
	f.StringVar(&o.kube.servingCert, "admission-cert", "", "with --kubernetes: the webhook's serving certificate, to check the caBundle of service webhooks")
	f.StringVar(&o.kube.match, "webhook", "portcullis", "with --kubernetes: check webhooks whose name, service or URL contains this")
	return cmd
}

func runDoctor(ctx context.Context, o doctorOptions, run cmdRunner, stdout, stderr io.Writer) error {
	p, err := nodeconfig.ParseProxy(o.proxy)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	regs, err := nodeconfig.ValidRegistries(o.registries)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if o.containerdDir == "" && o.containerdConfig == "" && o.dockerConfig == "" && o.podmanConfig == "" && !o.canary {
		return &exitError{code: 2, err: errors.New("nothing to check: give --containerd-dir, --containerd-config, --docker-config, --podman-config and/or --canary")}
	}
	var findings []nodeconfig.Finding
	checked := func(what string, fs []nodeconfig.Finding) {
		findings = append(findings, fs...)
		fmt.Fprintf(stderr, "checked %s: %d finding(s)\n", what, len(fs))
	}
	// The hosts directories: --containerd-dir, then CRI's config_path
	// entries in their order (containerd uses the first that has a
	// directory for the registry).
	var dirs []string
	addDir := func(d string) {
		if d != "" && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	addDir(o.containerdDir)
	if o.containerdConfig != "" {
		fs, cp := nodeconfig.CheckContainerdConfig(o.containerdConfig, o.containerdDir)
		checked(o.containerdConfig, fs)
		for _, d := range cp {
			addDir(d)
		}
	}
	for _, d := range dirs {
		checked(d, nodeconfig.CheckCertsDir(p, d))
	}
	if o.dockerConfig != "" {
		checked(o.dockerConfig, nodeconfig.CheckDockerConfig(o.dockerConfig))
	}
	if o.podmanConfig != "" {
		checked(o.podmanConfig, nodeconfig.CheckPodmanConfig(p, o.podmanConfig, regs))
	}
	if o.canary {
		hostsDir := "/etc/containerd/certs.d"
		if len(dirs) > 0 {
			hostsDir = dirs[0]
		}
		fs, err := runCanaries(ctx, p, o, regs, hostsDir, run, stderr)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		findings = append(findings, fs...)
	}
	for _, f := range findings {
		fmt.Fprintln(stdout, f)
	}
	if len(findings) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("doctor: %d finding(s): pulls can bypass %s", len(findings), p)}
	}
	fmt.Fprintf(stderr, "ok: nothing found that bypasses %s\n", p)
	return nil
}

// canaryRun is one canary pull: the command, and how to undo a pull that
// succeeded (so a bypassed node does not keep the canary image).
type canaryRun struct {
	name    string
	args    []string
	cleanup []string
	env     []string
}

func canaryCommand(rt string, o doctorOptions, hostsDir, ref string) (canaryRun, error) {
	switch rt {
	case "ctr":
		// A namespace of its own: a bypassed pull does not land among the
		// kubelet's images (k8s.io).
		var base []string
		if o.containerdAddr != "" {
			base = []string{"-a", o.containerdAddr}
		}
		base = append(base, "-n", "portcullis-doctor", "images")
		return canaryRun{name: "ctr", args: concat(base, "pull", "--hosts-dir", hostsDir, ref), cleanup: concat(base, "rm", ref)}, nil
	case "crictl":
		var base []string
		if o.containerdAddr != "" {
			base = []string{"--runtime-endpoint", "unix://" + o.containerdAddr, "--image-endpoint", "unix://" + o.containerdAddr}
		}
		return canaryRun{name: "crictl", args: concat(base, "pull", ref), cleanup: concat(base, "rmi", ref)}, nil
	case "docker":
		return canaryRun{name: rt, args: []string{"pull", ref}, cleanup: []string{"rmi", ref}}, nil
	case "podman":
		// podman reads CONTAINERS_REGISTRIES_CONF; the checked file is the
		// one the canary must use.
		c := canaryRun{name: rt, args: []string{"pull", ref}, cleanup: []string{"rmi", ref}}
		if o.podmanConfig != "" {
			c.env = []string{"CONTAINERS_REGISTRIES_CONF=" + o.podmanConfig}
		}
		return c, nil
	case "skopeo":
		// skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF; it takes a flag.
		var base []string
		if o.podmanConfig != "" {
			base = []string{"--registries-conf", o.podmanConfig}
		}
		return canaryRun{name: rt, args: concat(base, "inspect", "--raw", "docker://"+ref)}, nil
	case "crane":
		return canaryRun{name: rt, args: []string{"manifest", ref}}, nil
	}
	return canaryRun{}, fmt.Errorf("--runtime %q: want ctr, crictl, docker, podman, skopeo or crane", rt)
}

// concat returns a new slice: a followed by b.
func concat(a []string, b ...string) []string {
	return append(append(make([]string, 0, len(a)+len(b)), a...), b...)
}

func defaultRuntimes(o doctorOptions) []string {
	if len(o.runtimes) > 0 {
		return o.runtimes
	}
	var rts []string
	if o.containerdDir != "" || o.containerdConfig != "" {
		rts = append(rts, "ctr")
	}
	if o.dockerConfig != "" {
		rts = append(rts, "docker")
	}
	if o.podmanConfig != "" {
		rts = append(rts, "podman")
	}
	return rts
}

// canaryRefs are the references a runtime pulls: --canary-image, else the
// canary in each registry as the runtime names images (Docker only goes
// through the proxy when the name says so).
func canaryRefs(rt string, p nodeconfig.Proxy, o doctorOptions, regs []string) []string {
	if len(o.canaryImages) > 0 {
		return o.canaryImages
	}
	if len(regs) == 0 {
		regs = []string{"docker.io"}
	}
	var refs []string
	for _, r := range regs {
		ref := r + "/" + nodeconfig.CanaryRepository + ":deny"
		if rt == "docker" {
			ref = p.Host() + "/" + ref
		}
		refs = append(refs, ref)
	}
	return refs
}

func runCanaries(ctx context.Context, p nodeconfig.Proxy, o doctorOptions, regs []string, hostsDir string, run cmdRunner, log io.Writer) ([]nodeconfig.Finding, error) {
	rts := defaultRuntimes(o)
	if len(rts) == 0 {
		return nil, errors.New("--canary needs --runtime (ctr, crictl, docker, podman, skopeo, crane) or a runtime config to check")
	}
	var out []nodeconfig.Finding
	for _, rt := range rts {
		for _, ref := range canaryRefs(rt, p, o, regs) {
			c, err := canaryCommand(rt, o, hostsDir, ref)
			if err != nil {
				return nil, err
			}
			cctx, cancel := context.WithTimeout(ctx, o.timeout)
			res, err := run(cctx, c.env, c.name, c.args...)
			cancel()
			where := fmt.Sprintf("canary %s (%s)", ref, rt)
			switch verdict, detail := nodeconfig.ClassifyCanary(p, res, err); verdict {
			case nodeconfig.CanaryEnforced:
				fmt.Fprintf(log, "%s: refused by portcullis: enforced\n", where)
			case nodeconfig.CanaryBypassed:
				out = append(out, nodeconfig.Finding{Where: where, Problem: "pulled although portcullis always refuses it: this node reaches a registry other than the proxy — enforcement is bypassed"})
				if c.cleanup != nil {
					_, _ = run(ctx, c.env, c.name, c.cleanup...)
				}
			default:
				out = append(out, nodeconfig.Finding{Where: where, Problem: "inconclusive: the pull failed without portcullis's denial, so enforcement is not shown (push an image to the canary reference upstream; is the proxy reachable?): " + detail})
			}
		}
	}
	return out, nil
}
