package compose

import (
	"fmt"
	"sort"
	"strings"
)

// Order returns the services in start order: every service after the ones
// it depends on (depends_on), the ones it names in io.rancher.os.after and
// the ones that name it in io.rancher.os.before. Names of services that are
// not enabled are ignored, as RancherOS v1 did. Among services free to start,
// the order is by name, so the same config always starts the same way.
func Order(ss []Service) ([]Service, error) {
	byName := map[string]Service{}
	for _, s := range ss {
		byName[s.Name] = s
	}
	deps := map[string]map[string]bool{}
	add := func(svc, dep string) {
		if _, ok := byName[dep]; !ok || dep == svc {
			return
		}
		if deps[svc] == nil {
			deps[svc] = map[string]bool{}
		}
		deps[svc][dep] = true
	}
	for _, s := range ss {
		for _, d := range s.DependsOn {
			add(s.Name, d)
		}
		for _, d := range s.After {
			add(s.Name, d)
		}
		for _, b := range s.Before {
			add(b, s.Name)
		}
	}
	var out []Service
	done := map[string]bool{}
	for len(out) < len(ss) {
		var ready []string
		for name := range byName {
			if done[name] {
				continue
			}
			free := true
			for d := range deps[name] {
				if !done[d] {
					free = false
					break
				}
			}
			if free {
				ready = append(ready, name)
			}
		}
		if len(ready) == 0 {
			var left []string
			for name := range byName {
				if !done[name] {
					left = append(left, name)
				}
			}
			sort.Strings(left)
			return nil, fmt.Errorf("services: dependency cycle among %s", strings.Join(left, ", "))
		}
		sort.Strings(ready)
		for _, name := range ready {
			done[name] = true
			out = append(out, byName[name])
		}
	}
	return out, nil
}

// Deps returns the names of the enabled services s waits for.
func Deps(s Service, all []Service) []string {
	var out []string
	for _, o := range all {
		if o.Name == s.Name {
			continue
		}
		if contains(s.DependsOn, o.Name) || contains(s.After, o.Name) || contains(o.Before, s.Name) {
			out = append(out, o.Name)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
