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
	labels map[string]string // the object's labels and its template's, merged
	owned  bool              // has a controller ownerReference
	images []string          // distinct, in order of first appearance
	sites  map[string][]site // image → where it is named
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

type podSpecFields struct {
	Containers          []container `json:"containers"`
	InitContainers      []container `json:"initContainers"`
	EphemeralContainers []container `json:"ephemeralContainers"`
}

type podTemplate struct {
	Metadata objectMeta     `json:"metadata"`
	Spec     *podSpecFields `json:"spec"`
}

// templateOwnerSpec is the spec of every pod-template owner: template, or
// for a CronJob jobTemplate.spec.template.
type templateOwnerSpec struct {
	Template    *podTemplate `json:"template"`
	JobTemplate *struct {
		Spec *struct {
			Template *podTemplate `json:"template"`
		} `json:"spec"`
	} `json:"jobTemplate"`
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
	if isNull(top.Spec) {
		return nil, fmt.Errorf("the %s has no spec", gvk.Kind)
	}
	o := &object{labels: map[string]string{}, sites: map[string][]site{}}
	for k, v := range top.Metadata.Labels {
		o.labels[k] = v
	}
	for _, ref := range top.Metadata.OwnerReferences {
		o.owned = o.owned || (ref.Controller != nil && *ref.Controller)
	}

	if k.template == nil { // a Pod
		var spec podSpecFields
		if err := decodeJSON(top.Spec, &spec); err != nil {
			return nil, fmt.Errorf("cannot read spec of the %s: %w", gvk.Kind, err)
		}
		return o, o.addPodSpec(&spec, []string{"spec"}, gvk.Kind)
	}
	var owner templateOwnerSpec
	if err := decodeJSON(top.Spec, &owner); err != nil {
		return nil, fmt.Errorf("cannot read spec of the %s: %w", gvk.Kind, err)
	}
	tmpl := owner.Template
	if k.name == "cronjob" {
		switch {
		case owner.JobTemplate == nil:
			return nil, fmt.Errorf("the %s has no spec.jobTemplate", gvk.Kind)
		case owner.JobTemplate.Spec == nil:
			return nil, fmt.Errorf("the %s has no spec.jobTemplate.spec", gvk.Kind)
		}
		tmpl = owner.JobTemplate.Spec.Template
	}
	path := strings.Join(k.template, ".")
	if tmpl == nil {
		return nil, fmt.Errorf("the %s has no %s", gvk.Kind, path)
	}
	if tmpl.Spec == nil {
		return nil, fmt.Errorf("the %s has no %s.spec", gvk.Kind, path)
	}
	// The pods the template makes carry its labels: break-glass and the
	// pinning opt-out on the template count for the owner too.
	for k, v := range tmpl.Metadata.Labels {
		if _, set := o.labels[k]; !set {
			o.labels[k] = v
		}
	}
	return o, o.addPodSpec(tmpl.Spec, append(append([]string{}, k.template...), "spec"), gvk.Kind)
}

func (o *object) addPodSpec(spec *podSpecFields, path []string, kind string) error {
	for _, list := range containerLists {
		cs := spec.Containers
		switch list {
		case "initContainers":
			cs = spec.InitContainers
		case "ephemeralContainers":
			cs = spec.EphemeralContainers
		}
		for i, c := range cs {
			if strings.TrimSpace(c.Image) == "" {
				return fmt.Errorf("%s.%s[%d] (%q) of the %s names no image", strings.Join(path, "."), list, i, c.Name, kind)
			}
			tokens := append(append([]string{}, path...), list, strconv.Itoa(i), "image")
			s := site{list: list, index: i, container: c.Name, pointer: pointer(tokens)}
			if _, seen := o.sites[c.Image]; !seen {
				o.images = append(o.images, c.Image)
			}
			o.sites[c.Image] = append(o.sites[c.Image], s)
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
		if strings.ContainsAny(t, "~/") {
			t = strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
		}
		b.WriteString(t)
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
