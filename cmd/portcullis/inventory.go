package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/portcullis-dev/portcullis/internal/audit"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/pipeline"
	"github.com/portcullis-dev/portcullis/internal/server"
	"github.com/portcullis-dev/portcullis/internal/ui"
	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/policy"
)

func inventoryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "Query, fill and prune the inventory of decided images and their SBOM packages",
	}
	cmd.AddCommand(inventoryQueryCmd(), inventoryImportCmd(), inventoryPruneCmd())
	return cmd
}

// openInventory loads the config and opens its inventory; recording off
// is an error here, since every inventory command needs the store.
func openInventory(cmd *cobra.Command, cfgPath string) (*config.Config, inventory.Store, error) {
	if cfgPath == "" {
		return nil, nil, &exitError{code: 2, err: errors.New("--config is required")}
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, nil, &exitError{code: 2, err: err}
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := cfg.OpenInventory(cmd.Context(), log)
	if err != nil {
		return nil, nil, &exitError{code: 2, err: err}
	}
	if st == nil {
		return nil, nil, &exitError{code: 2, err: errors.New("inventory recording is off in this config (see the inventory section)")}
	}
	return cfg, st, nil
}

// maxQueryResults bounds the images `inventory query` collects across pages.
const maxQueryResults = 100000

func inventoryQueryCmd() *cobra.Command {
	var cfgPath, since, output string
	var q inventory.Query
	var limit int
	cmd := &cobra.Command{
		Use:   "query --config FILE (--purl P | --package NAME | --license ID | --image GLOB) [--since DURATION] [--limit N] [-o table|json]",
		Short: "List the recorded images that contain a package, a license, or match an image glob",
		Long: `List the recorded images that contain a package (by package URL, exact or
with a version range such as pkg:npm/lodash@<4.17.21, or by name) or a
license, or whose name matches a glob; --image narrows a package query.

Results are images by digest with their tags, when they were last seen, their
last decision and the packages that matched. At most --limit images are
printed; the output says when more matched. Exit status: 0 answered (also
when nothing matched), 2 bad usage or the inventory could not be read.`,
		Args: usageArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if q.PURL == "" && q.Package == "" && q.License == "" && q.Image == "" {
				return &exitError{code: 2, err: errors.New("give one of --purl, --package, --license or --image")}
			}
			if output != "table" && output != "json" {
				return &exitError{code: 2, err: fmt.Errorf("-o %q: use table or json", output)}
			}
			if limit < 1 || limit > maxQueryResults {
				return &exitError{code: 2, err: fmt.Errorf("--limit %d: give 1 to %d", limit, maxQueryResults)}
			}
			if since != "" {
				t, err := ui.ParseSince(since, time.Now())
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--since: %w", err)}
				}
				q.Since = t
			}
			if _, err := q.Plan(); err != nil {
				return &exitError{code: 2, err: err}
			}
			_, st, err := openInventory(cmd, cfgPath)
			if err != nil {
				return err
			}
			defer st.Close()
			images, more, err := queryAll(cmd.Context(), st, q, limit)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if output == "json" {
				// next is set when more images matched than were listed.
				return json.NewEncoder(cmd.OutOrStdout()).Encode(ui.NewPageJSON(images, more))
			}
			writeImageTable(cmd.OutOrStdout(), images)
			if more != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "(more images match: only the first %d are listed; raise --limit or narrow the query)\n", len(images))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "config file (YAML)")
	f.StringVar(&q.PURL, "purl", "", "package URL, exact or with a version range, e.g. pkg:npm/lodash@<4.17.21")
	f.StringVar(&q.Package, "package", "", "package name")
	f.StringVar(&q.License, "license", "", "license id, e.g. MIT")
	f.StringVar(&q.Image, "image", "", `image glob, e.g. "registry.example.com/team/**"`)
	f.StringVar(&since, "since", "", "only images seen within this long (36h, 7d) or since an RFC 3339 time")
	f.IntVar(&limit, "limit", 1000, "most images to list")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// queryAll follows the pages of q until limit images are collected. more
// is the cursor of what was left, "" when every match was collected.
func queryAll(ctx context.Context, st inventory.Store, q inventory.Query, limit int) (images []inventory.Image, more string, err error) {
	for {
		q.Limit = min(limit-len(images), inventory.MaxLimit)
		page, err := st.Query(ctx, q)
		if err != nil {
			return nil, "", err
		}
		images = append(images, page.Images...)
		if page.Next == "" {
			return images, "", nil
		}
		if len(images) >= limit {
			return images, page.Next, nil
		}
		q.Cursor = page.Next
	}
}

func writeImageTable(w io.Writer, images []inventory.Image) {
	if len(images) == 0 {
		fmt.Fprintln(w, "no recorded image matches")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tTAGS\tLAST SEEN\tOUTCOME\tSLSA\tPACKAGES")
	for _, img := range images {
		pkgs := make([]string, 0, len(img.Packages))
		for _, m := range img.Packages {
			if m.PURL != "" {
				pkgs = append(pkgs, m.PURL)
			} else {
				pkgs = append(pkgs, m.Name+"@"+m.Version)
			}
		}
		slsa := "-" // not graded: no slsa section, or recorded before grading
		if img.SLSA != nil {
			slsa = strconv.Itoa(*img.SLSA)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(img.Name()), printable(img.Digest.String()),
			printable(strings.Join(img.Tags, ",")), img.LastSeen.UTC().Format(time.RFC3339),
			printable(img.Outcome), slsa, printable(strings.Join(pkgs, ",")))
	}
	_ = tw.Flush()
}

// printable replaces control and other non-printing characters in text
// read from registries and SBOMs, so that it cannot move the terminal's
// cursor, hide itself or break the table's columns.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
}

func inventoryPruneCmd() *cobra.Command {
	var cfgPath, olderThan string
	cmd := &cobra.Command{
		Use:   "prune --config FILE [--older-than DURATION]",
		Short: "Delete the images not seen for a while, and the SBOMs no image refers to",
		Long: `Delete the recorded images not seen for --older-than (default: the config's
inventory.retentionDays), then the SBOMs no remaining image refers to.
Exit status: 0 pruned, 2 bad usage or the inventory could not be written.`,
		Args: usageArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var age time.Duration
			if olderThan != "" {
				var err error
				if age, err = ui.ParseAge(olderThan); err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--older-than: %w", err)}
				}
			}
			cfg, st, err := openInventory(cmd, cfgPath)
			if err != nil {
				return err
			}
			defer st.Close()
			if age == 0 {
				age = cfg.InventorySettings().Retention()
			}
			cut := time.Now().Add(-age).UTC()
			n, err := st.Prune(cmd.Context(), cut)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pruned %d images not seen since %s and %d SBOMs no image refers to\n",
				n.Images, cut.Format(time.RFC3339), n.SBOMs)
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "config file (YAML)")
	cmd.Flags().StringVar(&olderThan, "older-than", "", "prune images not seen for this long (36h, 90d); default inventory.retentionDays")
	return cmd
}

func inventoryImportCmd() *cobra.Command {
	var cfgPath, imagesFile string
	var concurrency int
	cmd := &cobra.Command{
		Use:   "import --config FILE --images FILE|- [--concurrency N]",
		Short: "Decide and record a list of images without pulling them (backfill)",
		Long: `Decide each image of a list (one per line, as in a pod spec; "-" reads
stdin) as the proxy would, and record the decisions and verified SBOMs in the
inventory. Nothing is pulled through the proxy and no alert is sent. Progress
goes to stderr when it is a terminal. Exit status: 0 every image decided and
recorded (denied ones too), 1 some image could not be decided or recorded,
2 bad usage or the inventory could not be opened.`,
		Args: usageArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if imagesFile == "" {
				return &exitError{code: 2, err: errors.New("--images is required")}
			}
			if concurrency < 1 || concurrency > 256 {
				return &exitError{code: 2, err: fmt.Errorf("--concurrency %d: give 1 to 256", concurrency)}
			}
			images, err := readImportList(cmd, imagesFile)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			cfg, st, err := openInventory(cmd, cfgPath)
			if err != nil {
				return err
			}
			defer st.Close()
			p, err := pipeline.New(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer server.CloseAlerts(p, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))
			imp := importer{p: p, st: st, stderr: cmd.ErrOrStderr(), now: time.Now}
			if f, ok := cmd.ErrOrStderr().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				imp.progress = f
			}
			sum := imp.run(pipeline.WithDoor(cmd.Context(), pipeline.DoorAudit), images, concurrency)
			fmt.Fprintln(cmd.OutOrStdout(), sum)
			if sum.failed() {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "config file (YAML)")
	f.StringVar(&imagesFile, "images", "", `image list, one per line ("-": stdin)`)
	f.IntVar(&concurrency, "concurrency", 8, "images decided at once")
	return cmd
}

func readImportList(cmd *cobra.Command, name string) ([]string, error) {
	var r io.Reader = cmd.InOrStdin()
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	list, err := audit.ImagesFromList(r)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%s lists no image", name)
	}
	images := make([]string, len(list))
	for i, im := range list {
		images[i] = im.Ref
	}
	return images, nil
}

// importer decides images and records their decisions straight into the
// store (no Recorder queue: a backfill waits for its writes, and a write
// that fails is reported, not counted as dropped).
type importer struct {
	p        *pipeline.Pipeline
	st       inventory.Store
	stderr   io.Writer
	progress io.Writer // nil: not a terminal
	now      func() time.Time

	mu  sync.Mutex
	sum importSummary
}

type importSummary struct {
	Total, Allowed, Warned, Denied, Undecided, Unrecorded int
}

func (s importSummary) String() string {
	return fmt.Sprintf("imported %d of %d images: %d allowed, %d warned, %d denied; %d could not be decided, %d could not be recorded",
		s.Allowed+s.Warned+s.Denied, s.Total, s.Allowed, s.Warned, s.Denied, s.Undecided, s.Unrecorded)
}

func (s importSummary) failed() bool { return s.Undecided > 0 || s.Unrecorded > 0 }

func (imp *importer) run(ctx context.Context, images []string, concurrency int) importSummary {
	imp.sum.Total = len(images)
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(concurrency, len(images)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for image := range work {
				imp.one(ctx, image)
			}
		}()
	}
	for _, image := range images {
		work <- image
	}
	close(work)
	wg.Wait()
	if imp.progress != nil {
		fmt.Fprintln(imp.progress)
	}
	return imp.sum
}

func (imp *importer) one(ctx context.Context, image string) {
	ref, d, err := imp.p.CheckImage(ctx, image)
	if err != nil {
		imp.done(image, func(s *importSummary) { s.Undecided++ }, fmt.Sprintf("%s: could not decide: %v", printable(image), err))
		return
	}
	rec := inventory.FromDecision(d, ref.Tag, imp.now())
	if err := rec.Validate(); err != nil {
		// An image on a registry no upstream serves, named by tag, has no
		// digest to record it under.
		imp.done(image, func(s *importSummary) { s.Unrecorded++ }, fmt.Sprintf("%s: %s, but not recorded: %v", printable(image), d.Outcome, err))
		return
	}
	if err := imp.st.Record(ctx, []inventory.Record{rec}); err != nil {
		imp.done(image, func(s *importSummary) { s.Unrecorded++ }, fmt.Sprintf("%s: %s, but not recorded: %v", printable(image), d.Outcome, err))
		return
	}
	imp.done(image, func(s *importSummary) {
		switch d.Outcome {
		case policy.Deny:
			s.Denied++
		case policy.Warn:
			s.Warned++
		default:
			s.Allowed++
		}
	}, "")
}

// done counts one image and reports a problem (msg) and the progress.
func (imp *importer) done(image string, count func(*importSummary), msg string) {
	imp.mu.Lock()
	defer imp.mu.Unlock()
	count(&imp.sum)
	if imp.progress != nil {
		fmt.Fprint(imp.progress, "\r\x1b[K")
	}
	if msg != "" {
		fmt.Fprintln(imp.stderr, msg)
	}
	if imp.progress != nil {
		s := imp.sum
		n := s.Allowed + s.Warned + s.Denied + s.Undecided + s.Unrecorded
		fmt.Fprintf(imp.progress, "[%d/%d] %s", n, s.Total, printable(image))
	}
}
