package admission

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
)

// Labels read from the object under review (and from its pod template, whose
// labels the pods it creates carry). See doc.go.
const (
	// LabelBreakGlass = "true" admits the object without checking its images,
	// with a warning, an audit annotation and a loud log line.
	LabelBreakGlass = "portcullis.dev/break-glass"
	// LabelPin = "false" keeps the mutating webhook from pinning the
	// object's images by digest; they are still checked.
	LabelPin = "portcullis.dev/pin"
)

// kindInfo says where a kind keeps its pod spec.
type kindInfo struct {
	// name is the metric label: a fixed set, never the request's text.
	name string
	// template is the JSON pointer tokens from the object to the pod
	// template (whose "spec" holds the containers); nil for a Pod, whose own
	// "spec" does.
	template []string
}

// podSpecOwner returns where the pod spec of a kind lives, and false for kinds
// this webhook does not know. The version is not compared: the shipped rules
// name only v1, and matchPolicy Equivalent makes the API server convert any
// other version to it.
func podSpecOwner(gk metav1.GroupVersionKind) (kindInfo, bool) {
	switch gk.Group + "/" + gk.Kind {
	case "/Pod":
		return kindInfo{name: "pod"}, true
	case "/ReplicationController":
		return kindInfo{name: "replicationcontroller", template: []string{"spec", "template"}}, true
	case "apps/Deployment", "apps/ReplicaSet", "apps/StatefulSet", "apps/DaemonSet", "batch/Job":
		return kindInfo{name: strings.ToLower(gk.Kind), template: []string{"spec", "template"}}, true
	case "batch/CronJob":
		return kindInfo{name: "cronjob", template: []string{"spec", "jobTemplate", "spec", "template"}}, true
	}
	return kindInfo{name: "other"}, false
}

// containerLists are the pod spec's container lists, in the order messages
// and patches name them.
var containerLists = [...]string{"containers", "initContainers", "ephemeralContainers"}

// site is one place an image is named.
type site struct {
	list      string // containers, initContainers or ephemeralContainers
	index     int
	container string
	// pointer is the RFC 6901 JSON pointer of the container's "image".
	pointer string
}

// object is what the webhook reads from a pod or pod-template owner.
type object struct {
	labels   map[string]string // the object's labels and its template's, merged
	owned    bool              // has a controller ownerReference
	images   []string          // distinct, in order of first appearance
	sites    map[string][]site // image → where it is named
	numSites int
}

type objectMeta struct {
	Labels          map[string]string `json:"labels"`
	OwnerReferences []struct {
		Controller *bool `json:"controller"`
	} `json:"ownerReferences"`
}

type container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// decodeObject reads raw as the kind k describes: its labels, whether a
// controller owns it, and every container image with its JSON pointer.
// Fields this webhook does not read are ignored (a newer API server's new
// fields must not lock a cluster out), but a field it reads that has the
// wrong type, a missing pod spec or a container without an image is an
// error: an object that does not parse is refused, never admitted unread.
func decodeObject(raw []byte, gvk metav1.GroupVersionKind, k kindInfo) (*object, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, errors.New("the request carries no object")
	}
	var top struct {
		APIVersion string          `json:"apiVersion"`
		Kind       string          `json:"kind"`
		Metadata   objectMeta      `json:"metadata"`
		Spec       json.RawMessage `json:"spec"`
	}
	if err := decodeJSON(raw, &top); err != nil {
		return nil, fmt.Errorf("cannot read the %s: %w", gvk.Kind, err)
	}
	// The object's own type, when it states one, must be the one the
	// request names: otherwise the pointers below would address another shape.
	if top.Kind != "" && top.Kind != gvk.Kind {
		return nil, fmt.Errorf("the request is for a %s but its object is a %s", gvk.Kind, top.Kind)
	}
	if want := groupVersion(gvk); top.APIVersion != "" && top.APIVersion != want {
		return nil, fmt.Errorf("the request is for %s but its object is %s", want, top.APIVersion)
	}
	o := &object{labels: map[string]string{}, sites: map[string][]site{}}
	for k, v := range top.Metadata.Labels {
		o.labels[k] = v
	}
	for _, ref := range top.Metadata.OwnerReferences {
		o.owned = o.owned || (ref.Controller != nil && *ref.Controller)
	}

	// Walk from the object to the pod template, then read its spec.
	cur, path := map[string]json.RawMessage{"spec": top.Spec}, []string{}
	for _, tok := range append(append([]string{}, k.template...), "spec") {
		next, ok := cur[tok]
		path = append(path, tok)
		if !ok || isNull(next) {
			return nil, fmt.Errorf("the %s has no %s", gvk.Kind, strings.Join(path, "."))
		}
		if tok == "template" {
			var tmpl struct {
				Metadata objectMeta `json:"metadata"`
			}
			if err := decodeJSON(next, &tmpl); err != nil {
				return nil, fmt.Errorf("cannot read %s of the %s: %w", strings.Join(path, "."), gvk.Kind, err)
			}
			for k, v := range tmpl.Metadata.Labels {
				if _, set := o.labels[k]; !set {
					o.labels[k] = v
				}
			}
		}
		if tok == "spec" && len(path) == len(k.template)+1 {
			return o, o.readPodSpec(next, path, gvk.Kind)
		}
		cur = nil
		if err := decodeJSON(next, &cur); err != nil {
			return nil, fmt.Errorf("cannot read %s of the %s: %w", strings.Join(path, "."), gvk.Kind, err)
		}
	}
	return nil, fmt.Errorf("the %s has no pod spec", gvk.Kind) // unreachable: the loop ends on "spec"
}

func (o *object) readPodSpec(raw json.RawMessage, path []string, kind string) error {
	var spec struct {
		Containers          []container `json:"containers"`
		InitContainers      []container `json:"initContainers"`
		EphemeralContainers []container `json:"ephemeralContainers"`
	}
	if err := decodeJSON(raw, &spec); err != nil {
		return fmt.Errorf("cannot read %s of the %s: %w", strings.Join(path, "."), kind, err)
	}
	for _, list := range containerLists {
		cs := spec.Containers
		switch list {
		case "initContainers":
			cs = spec.InitContainers
		case "ephemeralContainers":
			cs = spec.EphemeralContainers
		}
		for i, c := range cs {
			where := strings.Join(path, ".") + "." + list + "[" + strconv.Itoa(i) + "]"
			if strings.TrimSpace(c.Image) == "" {
				return fmt.Errorf("%s (%q) of the %s names no image", where, c.Name, kind)
			}
			tokens := append(append([]string{}, path...), list, strconv.Itoa(i), "image")
			s := site{list: list, index: i, container: c.Name, pointer: pointer(tokens)}
			if _, seen := o.sites[c.Image]; !seen {
				o.images = append(o.images, c.Image)
			}
			o.sites[c.Image] = append(o.sites[c.Image], s)
			o.numSites++
		}
	}
	return nil
}

func groupVersion(gvk metav1.GroupVersionKind) string {
	if gvk.Group == "" {
		return gvk.Version
	}
	return gvk.Group + "/" + gvk.Version
}

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// pointer builds an RFC 6901 JSON pointer, escaping "~" as "~0" and "/" as
// "~1" (in that order, section 3).
func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}

// decodeJSON decodes as the API server does: field names case-sensitive
// (encoding/json would also take "Containers" for "containers", and with
// both present read a list the API server ignores) and duplicate fields
// refused, so this webhook never reads another object than the one stored.
func decodeJSON(raw []byte, v any) error {
	strict, err := kjson.UnmarshalStrict(raw, v, kjson.DisallowDuplicateFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}
