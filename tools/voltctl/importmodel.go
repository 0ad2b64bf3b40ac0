package voltctl

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/voltageems/voltage/shared/config"
	"github.com/voltageems/voltage/shared/model"
)

// The translation of the original's model folder (modsrv/: instances.yaml, the
// per-instance folders instances/{name}/ with instance.yaml and
// channel_routing.csv) into this version's modsrv/ (DESIGN §3).

// originalProducts maps the original's product names (lowercase in its templates,
// capitalised in its built-in library) to the built-in products of this version.
var originalProducts = map[string]string{
	"station": "station", "ess": "ess", "battery": "battery", "battery_pack": "battery", "batterypack": "battery",
	"bms": "battery", "pcs": "pcs", "pv_inverter": "pv_inverter", "pvinverter": "pv_inverter", "pv": "pv_inverter",
	"meter": "meter", "grid_meter": "meter", "genset": "genset", "diesel_generator": "genset", "dieselgenerator": "genset",
	"generator": "genset", "load": "load", "environment": "environment", "ev_charger": "ev_charger", "evcharger": "ev_charger",
	"charger": "ev_charger",
}

// originalInstance is one instance gathered from instances.yaml and its folder.
type originalInstance struct {
	key         string // the name in the original
	name        string // the name written
	id          uint32
	product     string
	description string
	properties  yaml.MapSlice
	pos         config.Position
	routing     []byte // channel_routing.csv, nil when there is none
}

// modsrv converts SRC/modsrv into DST/modsrv; no files when SRC has no model.
func (im *importer) modsrv() ([]outFile, error) {
	root := filepath.Join(im.src, model.Folder)
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the original model: %w", err)
	}
	var insts []*originalInstance
	byKey := map[string]*originalInstance{}
	for _, de := range entries {
		path := filepath.Join(root, de.Name())
		switch de.Name() {
		case model.InstancesFile:
			if insts, err = im.originalInstances(path, byKey); err != nil {
				return nil, err
			}
		case model.InstancesFolder, "products":
		case "modsrv.yaml":
			im.report(config.Position{File: path}, "dropped: the model's folders are fixed (modsrv/products, modsrv/instances)")
		case model.CalculationsFile:
			im.report(config.Position{File: path}, "not imported: the original's calculations (type/formula/variables by Redis key) have no equivalent; write them as expressions in modsrv/calculations.yaml (docs/modsrv.md)")
		case "rules":
			im.report(config.Position{File: path}, "not imported: rules belong to rulesrv, whose format differs")
		default:
			im.report(config.Position{File: path}, "not imported: not part of the model")
		}
	}
	if err := im.instanceFolders(filepath.Join(root, model.InstancesFolder), byKey, &insts); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(root, "products")); err == nil {
		im.report(config.Position{File: filepath.Join(root, "products")}, "not imported: this version's products are in its own format; the built-in library replaces the original's, products named there are mapped to it")
	}
	if len(insts) == 0 {
		return nil, nil
	}
	return im.modelFiles(insts)
}

// originalInstances reads instances.yaml: a mapping name → {product_name, name,
// description, properties}.
func (im *importer) originalInstances(path string, byKey map[string]*originalInstance) ([]*originalInstance, error) {
	doc, y, err := readYAML(path)
	if err != nil {
		return nil, fmt.Errorf("read the original instances: %w", err)
	}
	var out []*originalInstance
	for _, kv := range doc {
		if fmt.Sprint(kv.Key) != "instances" {
			im.report(y.keyPos(fmt.Sprint(kv.Key)), "dropped %s: not an instance", kv.Key)
			continue
		}
		list, ok := kv.Value.(yaml.MapSlice)
		if !ok && kv.Value != nil {
			return nil, fmt.Errorf("%s: instances: want a mapping of instance names", y.valuePos("instances"))
		}
		for _, e := range list {
			key := fmt.Sprint(e.Key)
			fields, _ := e.Value.(yaml.MapSlice)
			inst := &originalInstance{key: key, pos: y.keyPos("instances", key)}
			im.instanceFields(inst, fields, y, []any{"instances", key})
			byKey[key] = inst
			out = append(out, inst)
		}
	}
	return out, nil
}

// instanceFields takes the keys of one instance entry (instances.yaml or instance.yaml).
func (im *importer) instanceFields(inst *originalInstance, fields yaml.MapSlice, y *yamlFile, at []any) {
	for _, f := range fields {
		key := fmt.Sprint(f.Key)
		pos := y.keyPos(append(slices.Clone(at), key)...)
		switch key {
		case "product_name", "product":
			inst.product = fmt.Sprint(f.Value)
		case "name":
			if s := fmt.Sprint(f.Value); s != inst.key {
				inst.description = cmp.Or(inst.description, s)
				im.report(pos, "instance %s: name %q → description (names are identifiers in this version)", inst.key, s)
			}
		case "description":
			inst.description = fmt.Sprint(f.Value)
		case "id":
			n, err := strconv.ParseUint(fmt.Sprint(f.Value), 10, 32)
			if err != nil || n == 0 {
				im.report(pos, "instance %s: dropped id %v: not a positive number", inst.key, f.Value)
				continue
			}
			inst.id = uint32(n)
		case "properties":
			props, _ := f.Value.(yaml.MapSlice)
		next:
			for _, p := range props { // instance.yaml overrides instances.yaml
				for i := range inst.properties {
					if fmt.Sprint(inst.properties[i].Key) == fmt.Sprint(p.Key) {
						inst.properties[i] = p
						continue next
					}
				}
				inst.properties = append(inst.properties, p)
			}
		case "enabled":
			if fmt.Sprint(f.Value) == "false" {
				im.report(pos, "instance %s: enabled: false has no equivalent; the instance is imported (remove it to leave it out)", inst.key)
			}
		default:
			im.report(pos, "instance %s: dropped %s: not an instance key of this version", inst.key, key)
		}
	}
}

// instanceFolders reads instances/{name}/: instance.yaml (merged into the entry)
// and channel_routing.csv (copied as it is).
func (im *importer) instanceFolders(dir string, byKey map[string]*originalInstance, insts *[]*originalInstance) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the original instance folders: %w", err)
	}
	for _, de := range entries {
		path := filepath.Join(dir, de.Name())
		if !de.IsDir() {
			im.report(config.Position{File: path}, "not imported: not an instance folder")
			continue
		}
		inst := byKey[de.Name()]
		files, err := os.ReadDir(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		for _, f := range files {
			fp := filepath.Join(path, f.Name())
			switch f.Name() {
			case "instance.yaml":
				doc, y, err := readYAML(fp)
				if err != nil {
					return fmt.Errorf("read the original instance: %w", err)
				}
				for _, kv := range doc {
					if fmt.Sprint(kv.Key) != "instance" {
						im.report(y.keyPos(fmt.Sprint(kv.Key)), "dropped %s: not part of an instance", kv.Key)
						continue
					}
					if inst == nil {
						inst = &originalInstance{key: de.Name(), pos: y.keyPos("instance")}
						byKey[de.Name()] = inst
						*insts = append(*insts, inst)
					}
					fields, _ := kv.Value.(yaml.MapSlice)
					im.instanceFields(inst, fields, y, []any{"instance"})
				}
				im.report(config.Position{File: fp}, "instance %s: merged into modsrv/instances.yaml", de.Name())
			case model.RoutingFile:
				data, err := os.ReadFile(fp)
				if err != nil {
					return err
				}
				if inst == nil {
					im.report(config.Position{File: fp}, "not imported: no instance %s in instances.yaml", de.Name())
					continue
				}
				inst.routing = data
			default:
				im.report(config.Position{File: fp}, "not imported: an instance folder holds instance.yaml and %s", model.RoutingFile)
			}
		}
	}
	return nil
}

// modelFiles renders instances.yaml and the routing tables.
func (im *importer) modelFiles(insts []*originalInstance) ([]outFile, error) {
	builtin := model.BuiltinProducts()
	used := map[uint32]bool{}
	next := uint32(1)
	for _, inst := range insts {
		used[inst.id] = inst.id != 0
	}
	names := map[string]bool{}
	var list []any
	var files []outFile
	for _, inst := range insts {
		inst.name = identifier(inst.key)
		if inst.name != inst.key {
			im.report(inst.pos, "instance %s renamed %s: names are lowercase identifiers", inst.key, inst.name)
		}
		for names[inst.name] {
			inst.name += "_"
		}
		names[inst.name] = true
		if inst.id == 0 {
			for used[next] {
				next++
			}
			inst.id = next
			used[next] = true
			im.report(inst.pos, "instance %s: id %d assigned (the original gave none)", inst.key, inst.id)
		}
		product := inst.product
		if p, ok := originalProducts[strings.ToLower(product)]; ok {
			if p != product {
				im.report(inst.pos, "instance %s: product %s → built-in %s", inst.key, product, p)
			}
			product = p
		} else {
			im.report(inst.pos, "instance %s: product %q is not in the built-in library; add modsrv/products/%s.yaml", inst.key, product, identifier(product))
		}
		entry := yaml.MapSlice{{Key: "id", Value: inst.id}, {Key: "name", Value: inst.name}, {Key: "product", Value: product}}
		if inst.description != "" {
			entry = append(entry, yaml.MapItem{Key: "description", Value: inst.description})
		}
		var props yaml.MapSlice
		for _, kv := range inst.properties {
			key := fmt.Sprint(kv.Key)
			if p := builtin[product]; p != nil && p.Property(key) == nil {
				im.report(inst.pos, "instance %s: dropped property %s: product %s has no such property", inst.key, key, product)
				continue
			}
			props = append(props, kv)
		}
		if len(props) > 0 {
			entry = append(entry, yaml.MapItem{Key: "properties", Value: props})
		}
		list = append(list, entry)
		if inst.routing != nil {
			files = append(files, outFile{rel: filepath.Join(model.Folder, model.InstancesFolder, inst.name, model.RoutingFile), data: inst.routing})
		}
	}
	data, err := marshalYAML("# Instances imported by `voltctl import original` from "+filepath.Join(im.src, model.Folder)+".\n",
		yaml.MapSlice{{Key: "instances", Value: list}})
	if err != nil {
		return nil, err
	}
	return append([]outFile{{rel: filepath.Join(model.Folder, model.InstancesFile), data: data}}, files...), nil
}

// identifier turns a name into a lowercase identifier.
func identifier(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	out := strings.Trim(b.String(), "_")
	if out == "" || out[0] >= '0' && out[0] <= '9' {
		out = "i_" + out
	}
	return out
}
