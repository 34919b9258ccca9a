package proxy

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// isManifestJSON tells a manifest or index from other JSON blobs (image
// configs, SBOMs).
func isManifestJSON(b []byte) bool {
	var doc manifestDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return false
	}
	// containerd does not check schemaVersion, so neither can this: layers,
	// manifests, a config descriptor with a digest (an image config's
	// "config" has none) or a manifest media type make a manifest.
	if doc.Layers != nil || doc.Manifests != nil || (doc.Config != nil && doc.Config.Digest != "") || isManifestType(doc.MediaType) {
		return true
	}
	return doc.SchemaVersion == 2 && doc.Config != nil
}

func isManifestType(mt string) bool {
	return isIndex(mt) || mt == mediaTypeDockerManifest || mt == ocispec.MediaTypeImageManifest
}

// manifestLike reads a JSON document to its end, holding only a few bytes at
// a time, and reports whether its top-level object has what makes
// isManifestJSON say yes: a "layers" or "manifests" member, a "mediaType"
// naming a manifest or index, or a "config" object with a "digest". It is
// for documents too large to parse whole; it does not validate them, and
// errs towards yes (any "layers" member counts, whatever its value). An
// error is a read error.
func manifestLike(r io.Reader) (bool, error) {
	br := bufio.NewReader(r)
	var (
		depth    int
		inString bool
		escaped  bool
		str      []byte // the current string as written, while short enough to matter
		long     bool   // str was cut
		esc      bool   // str has escapes
		lastStr  string // the last complete string at this depth
		key      string // the key whose value is being read, at depth 1
		inConfig bool   // inside the value of a top-level "config" object
	)
	const maxStr = 128
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped, esc = true, true
			case c == '"':
				inString = false
				lastStr = jsonString(str, esc, long)
				// A top-level "mediaType" value is complete.
				if depth == 1 && key == "mediaType" && isManifestType(lastStr) {
					return true, nil
				}
				continue
			}
			if len(str) < maxStr {
				str = append(str, c)
			} else {
				long = true
			}
			continue
		}
		switch c {
		case '"':
			inString, str, long, esc = true, str[:0], false, false
		case ':':
			switch depth {
			case 1:
				key = memberName(lastStr)
				if key == "layers" || key == "manifests" {
					return true, nil
				}
			case 2:
				if inConfig && memberName(lastStr) == "digest" {
					return true, nil
				}
			}
		case ',':
			if depth == 1 {
				key = ""
			}
		case '{', '[':
			depth++
			if depth == 2 && c == '{' && key == "config" {
				inConfig = true
			}
		case '}', ']':
			depth--
			if depth <= 1 {
				inConfig = false
			}
			if depth <= 0 {
				return false, nil // the end of the top-level value
			}
		}
		lastStrReset(&lastStr, c)
	}
}

// jsonString is the value of a string token written as raw (without its
// quotes): escapes decoded as encoding/json decodes them. A cut or broken
// string is "".
func jsonString(raw []byte, escapes, cut bool) string {
	if cut {
		return ""
	}
	if !escapes {
		return string(raw)
	}
	var s string
	if err := json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s); err != nil {
		return ""
	}
	return s
}

// memberName maps a member name to the manifestDoc field encoding/json
// would put it in — it matches names case-insensitively, Unicode folds
// included ("LAYERS", "layerſ") — or returns it unchanged.
func memberName(name string) string {
	for _, f := range []string{"layers", "manifests", "config", "mediaType", "digest"} {
		if strings.EqualFold(name, f) {
			return f
		}
	}
	return name
}

// lastStrReset forgets the last string once anything but whitespace or a
// colon follows it, so that only "key": pairs count as keys.
func lastStrReset(last *string, c byte) {
	switch c {
	case ' ', '\t', '\r', '\n', ':', '"':
		return
	}
	*last = ""
}
