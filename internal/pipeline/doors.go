package pipeline

import (
	"context"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/portcullis-dev/portcullis/alert"
	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/policy"
)

// Door names who asks the pipeline. Decisions are the same whatever the
// door (fact 11); what differs is who reports a denial: the proxy's are
// alerted here, admission and the audit alert with their own context
// (namespace, object, finding), and `portcullis verify` does not alert.
type Door string

// The doors.
const (
	DoorProxy     Door = "proxy"
	DoorAdmission Door = "admission"
	DoorAudit     Door = "audit"
	DoorVerify    Door = "verify"
)

type doorKey struct{}

// WithDoor marks ctx as coming through door.
func WithDoor(ctx context.Context, door Door) context.Context {
	return context.WithValue(ctx, doorKey{}, door)
}

// doorOf is the door ctx came through: the proxy's HTTP requests carry none.
func doorOf(ctx context.Context) Door {
	if d, ok := ctx.Value(doorKey{}).(Door); ok {
		return d
	}
	return DoorProxy
}

// doorDecider is the decider the proxy asks, for its own requests and for
// every door's Check: the chain, then what each answer owes the rest of the
// system. The proxy's own denials are alerted (deduplicated per digest and
// rule by the dispatcher, so a cached denial asked again is not a new
// message); an answer from the cache is recorded in the inventory as seen
// again (a made decision was recorded below the cache, with its SBOMs);
// observers see every answer.
type doorDecider struct {
	*reloader
	alerts   *alert.Dispatcher // nil: no alerts configured (Notify is a no-op)
	recorder Recorder          // nil: no inventory
	// seen throttles "seen again" records: a warm proxy answers the same
	// digest and tag many times a second, and one inventory write per pull
	// would put the database on the request path's heels. Last-seen keeps a
	// seenWindow granularity; made decisions are always recorded.
	seen      *expirable.LRU[string, struct{}]
	observers []Observer
	now       func() time.Time
}

// seenWindow is how often, at most, a cached answer for one digest and tag
// is recorded as seen again.
const seenWindow = time.Minute

func newDoorDecider(r *reloader, alerts *alert.Dispatcher, rec Recorder, observers []Observer) *doorDecider {
	return &doorDecider{reloader: r, alerts: alerts, recorder: rec, observers: observers, now: time.Now,
		seen: expirable.NewLRU[string, struct{}](1<<16, nil, seenWindow)}
}

func (a *doorDecider) Decide(ctx context.Context, s policy.Subject) (policy.Decision, error) {
	d, err := a.reloader.Decide(ctx, s)
	if err != nil {
		return d, err
	}
	at, door := a.now(), doorOf(ctx)
	if d.Outcome == policy.Deny && door == DoorProxy {
		a.alerts.Notify(alert.FromDecision(alert.SourceProxy, at, d))
	}
	if d.Cached && a.recorder != nil {
		if k := d.Subject.Digest.String() + " " + s.Registry + "/" + s.Repository + ":" + s.Tag; !a.seen.Contains(k) {
			a.seen.Add(k, struct{}{})
			a.recorder.Record(inventory.FromDecision(d, s.Tag, at))
		}
	}
	for _, o := range a.observers {
		o(d, door, at)
	}
	return d, err
}
