package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/voltageems/voltage/shared/point"
)

// Small text helpers for messages.

func itoa(n int) string     { return strconv.Itoa(n) }
func uitoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func contains(list []string, s string) bool { return slices.Contains(list, s) }

// joinQuoted renders ["a", "b"] as `"a", "b"`.
func joinQuoted(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// maxIDRanges bounds a list of point ids in one message.
const maxIDRanges = 20

// formatIDs renders point ids as sorted ranges, "1-5, 8, 10-12", shortened when long.
func formatIDs(ids []point.ID) string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, uitoa(ids[i]))
		} else {
			parts = append(parts, uitoa(ids[i])+"-"+uitoa(ids[j]))
		}
		i = j + 1
	}
	if len(parts) > maxIDRanges {
		return fmt.Sprintf("%s and %d more ranges", strings.Join(parts[:maxIDRanges], ", "), len(parts)-maxIDRanges)
	}
	return strings.Join(parts, ", ")
}
