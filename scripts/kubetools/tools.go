//go:build tools

// Package kubetools pins the commands scripts/install-tools.sh builds from
// this module; the build tag keeps it out of every ordinary build.
package kubetools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
