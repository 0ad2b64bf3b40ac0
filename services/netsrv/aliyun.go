package netsrv

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// AliyunCredentials are the MQTT CONNECT fields of the Aliyun IoT Platform's
// documented device sign-in (securemode=2: TLS, signmethod=hmacsha256).
type AliyunCredentials struct {
	ClientID string
	Username string
	Password string
}

// AliyunSign computes the sign-in for a device at timestamp ts (Unix ms):
//
//	client id: {clientId}|securemode=2,signmethod=hmacsha256,timestamp={ts}|
//	user name: {deviceName}&{productKey}
//	password:  hex(HMAC-SHA256(deviceSecret,
//	           "clientId{clientId}deviceName{deviceName}productKey{productKey}timestamp{ts}"))
func AliyunSign(productKey, deviceName, deviceSecret, clientID string, ts int64) AliyunCredentials {
	if clientID == "" {
		clientID = deviceName
	}
	t := strconv.FormatInt(ts, 10)
	content := "clientId" + clientID + "deviceName" + deviceName + "productKey" + productKey + "timestamp" + t
	mac := hmac.New(sha256.New, []byte(deviceSecret))
	mac.Write([]byte(content))
	return AliyunCredentials{
		ClientID: clientID + "|securemode=2,signmethod=hmacsha256,timestamp=" + t + "|",
		Username: deviceName + "&" + productKey,
		Password: hex.EncodeToString(mac.Sum(nil)),
	}
}

// AliyunPropertyPostTopic is where a device posts its properties.
func AliyunPropertyPostTopic(productKey, deviceName string) string {
	return "/sys/" + productKey + "/" + deviceName + "/thing/event/property/post"
}

// AliyunPropertySetTopic is where the platform sets a device's properties.
func AliyunPropertySetTopic(productKey, deviceName string) string {
	return "/sys/" + productKey + "/" + deviceName + "/thing/service/property/set"
}

// maxDownlinkBytes bounds every downlink payload netsrv parses.
const maxDownlinkBytes = 64 * 1024

// maxDownlinkWrites bounds how many points one downlink may write.
const maxDownlinkWrites = 64

// aliyunSet is an Alink property set: {"id","version","params":{name:value},"method"}.
type aliyunSet struct {
	ID     string
	Writes []namedWrite // sorted by name
}

type namedWrite struct {
	Name  string
	Value float64
}

// ParseAliyunPropertySet reads an Alink thing.service.property.set request. The id
// is returned even when the rest is wrong, so the reply can name it.
func ParseAliyunPropertySet(b []byte) (id string, writes []namedWrite, err error) {
	if len(b) > maxDownlinkBytes {
		return "", nil, fmt.Errorf("payload of %d bytes exceeds %d", len(b), maxDownlinkBytes)
	}
	var req struct {
		ID      json.RawMessage            `json:"id"`
		Version string                     `json:"version"`
		Method  string                     `json:"method"`
		Params  map[string]json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(b, &req); err != nil {
		return "", nil, fmt.Errorf("not an Alink JSON request: %w", err)
	}
	id = rawID(req.ID)
	if req.Method != "" && req.Method != "thing.service.property.set" {
		return id, nil, fmt.Errorf("method %q: want thing.service.property.set", req.Method)
	}
	if len(req.Params) == 0 {
		return id, nil, errors.New("params is empty: nothing to set")
	}
	if len(req.Params) > maxDownlinkWrites {
		return id, nil, fmt.Errorf("%d properties in one set; at most %d", len(req.Params), maxDownlinkWrites)
	}
	for name, raw := range req.Params {
		v, err := writeValue(raw)
		if err != nil {
			return id, nil, fmt.Errorf("params.%s: %w", name, err)
		}
		writes = append(writes, namedWrite{Name: name, Value: v})
	}
	sortWrites(writes)
	return id, writes, nil
}

// rawID renders a JSON id (string or number) as text; anything else is "".
func rawID(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return ""
		}
		s = n.String()
	}
	if len(s) > maxIDBytes {
		s = s[:maxIDBytes] // a number can be as long as a string
	}
	return s
}

// maxIDBytes caps a request id echoed in a reply.
const maxIDBytes = 64

// writeValue accepts a number, a boolean (1/0) or {"value": number|bool}.
func writeValue(raw json.RawMessage) (float64, error) {
	var f float64
	if err := json.Unmarshal(raw, &f); err == nil {
		return f, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		if b {
			return 1, nil
		}
		return 0, nil
	}
	var obj struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &obj); err == nil && len(obj.Value) > 0 && obj.Value[0] != '{' {
		return writeValue(obj.Value)
	}
	s := strings.TrimSpace(string(raw))
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return 0, fmt.Errorf("value %s is not a number or boolean", s)
}

func sortWrites(w []namedWrite) {
	for i := 1; i < len(w); i++ {
		for j := i; j > 0 && w[j].Name < w[j-1].Name; j-- {
			w[j], w[j-1] = w[j-1], w[j]
		}
	}
}

// aliyunReply is the Alink reply on {request topic}_reply: code 200 is success.
func aliyunReply(id string, code int, message string, data any) []byte {
	if data == nil {
		data = map[string]any{}
	}
	b, _ := json.Marshal(struct {
		ID      string `json:"id"`
		Code    int    `json:"code"`
		Message string `json:"message,omitempty"`
		Data    any    `json:"data"`
	}{id, code, message, data})
	return b
}
