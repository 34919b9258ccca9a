package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/verify"
)

func policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Work with policy files"}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Check a policy file: exit 0, or 1 with each error's location and meaning",
		Args:  usageArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := policy.Load(args[0])
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return &exitError{code: 1}
			}
			// TUF mirrors are verified as the proxy would at start.
			if err := verify.CheckTrust(p); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", args[0], err)
				return &exitError{code: 1}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d rules, generation %s)\n", args[0], len(p.Rules()), p.Generation())
			return nil
		},
	})
	return cmd
}
