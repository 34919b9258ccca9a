package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Use is one place an image runs: a container of a pod.
type Use struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Container string `json:"container"`
}

// Image is one image reference to audit, with where it runs.
type Image struct {
	// Ref is the reference as the pod spec (or list) writes it.
	Ref  string `json:"image"`
	Uses []Use  `json:"uses,omitempty"`
}

// podList is the part of a v1 PodList (or a kubectl List of pods) read.
type podList struct {
	Kind     string `json:"kind"`
	Items    []pod  `json:"items"`
	Metadata struct {
		Continue string `json:"continue"`
	} `json:"metadata"`
}

type pod struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		Containers          []container `json:"containers"`
		InitContainers      []container `json:"initContainers"`
		EphemeralContainers []container `json:"ephemeralContainers"`
	} `json:"spec"`
}

type container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// maxListBytes bounds a pod list read from a file or one API page.
const maxListBytes = 256 << 20

// addPods adds the images of pods to byRef.
func addPods(byRef map[string]*Image, pods []pod) error {
	for i, p := range pods {
		if p.Kind != "" && p.Kind != "Pod" {
			return fmt.Errorf("items[%d] is a %s, not a Pod", i, p.Kind)
		}
		for _, list := range [][]container{p.Spec.InitContainers, p.Spec.Containers, p.Spec.EphemeralContainers} {
			for _, c := range list {
				if c.Image == "" {
					return fmt.Errorf("pod %s/%s container %q has no image", p.Metadata.Namespace, p.Metadata.Name, c.Name)
				}
				img := byRef[c.Image]
				if img == nil {
					img = &Image{Ref: c.Image}
					byRef[c.Image] = img
				}
				img.Uses = append(img.Uses, Use{Namespace: p.Metadata.Namespace, Pod: p.Metadata.Name, Container: c.Name})
			}
		}
	}
	return nil
}

func sorted(byRef map[string]*Image) []Image {
	out := make([]Image, 0, len(byRef))
	for _, img := range byRef {
		out = append(out, *img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out
}

// PodsFromJSON reads `kubectl get pods -A -o json` output (a List or a
// PodList).
func PodsFromJSON(r io.Reader) ([]Image, error) {
	var l podList
	dec := json.NewDecoder(io.LimitReader(r, maxListBytes))
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("reading the pod list: %w", err)
	}
	if l.Kind != "List" && l.Kind != "PodList" {
		return nil, fmt.Errorf("reading the pod list: kind %q is not List or PodList (want `kubectl get pods -A -o json`)", l.Kind)
	}
	byRef := map[string]*Image{}
	if err := addPods(byRef, l.Items); err != nil {
		return nil, fmt.Errorf("reading the pod list: %w", err)
	}
	return sorted(byRef), nil
}

// ImagesFromList reads one image reference per line; blank lines and lines
// starting with # are skipped.
func ImagesFromList(r io.Reader) ([]Image, error) {
	byRef := map[string]*Image{}
	sc := bufio.NewScanner(io.LimitReader(r, maxListBytes))
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if strings.ContainsAny(s, " \t") {
			return nil, fmt.Errorf("image list line %d: %q holds more than one word", line, s)
		}
		if byRef[s] == nil {
			byRef[s] = &Image{Ref: s}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the image list: %w", err)
	}
	return sorted(byRef), nil
}

// KubeConfig loads the client configuration: kubeconfig when set, else the
// files in KUBECONFIG (env is os.Getenv), else the in-cluster service
// account.
func KubeConfig(kubeconfig string, env func(string) string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	switch {
	case kubeconfig != "":
		rules.ExplicitPath = kubeconfig
	case env("KUBECONFIG") != "":
	default:
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no --kubeconfig, no KUBECONFIG, and not in a cluster: %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return cfg, nil
}

// PodsFromCluster lists the pods of every namespace from the API server,
// page by page.
func PodsFromCluster(ctx context.Context, cfg *rest.Config) ([]Image, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	base, err := url.Parse(cfg.Host)
	if err != nil || base.Host == "" {
		return nil, fmt.Errorf("kubernetes client: host %q is not a URL", cfg.Host)
	}
	byRef := map[string]*Image{}
	cont := ""
	for page := 0; ; page++ {
		if page >= 10000 {
			return nil, fmt.Errorf("listing pods: more than %d pages", page)
		}
		u := base.JoinPath(base.Path, "/api/v1/pods")
		q := url.Values{"limit": {"500"}}
		if cont != "" {
			q.Set("continue", cont)
		}
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("listing pods: %w", err)
		}
		var l podList
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			return nil, fmt.Errorf("listing pods: %s: %s", resp.Status, strings.TrimSpace(string(b)))
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, maxListBytes)).Decode(&l)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("listing pods: %w", err)
		}
		if err := addPods(byRef, l.Items); err != nil {
			return nil, fmt.Errorf("listing pods: %w", err)
		}
		if cont = l.Metadata.Continue; cont == "" {
			return sorted(byRef), nil
		}
	}
}
