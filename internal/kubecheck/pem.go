package kubecheck

import "encoding/pem"

type pemBlock = pem.Block

// decodePEM returns the next CERTIFICATE block and the rest.
func decodePEM(b []byte) (*pem.Block, []byte) {
	for {
		blk, rest := pem.Decode(b)
		if blk == nil || blk.Type == "CERTIFICATE" {
			return blk, rest
		}
		b = rest
	}
}
