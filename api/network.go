package api

import "time"

// Profile is a named set of config and devices (LXD's Profile).
type Profile struct {
	// Name is the profile's name, unique on the host.
	Name string `json:"name"`
	// Description says what the profile is for.
	Description string `json:"description"`
	// Config holds instance config keys.
	Config map[string]string `json:"config"`
	// Devices maps a device's name to its type and settings.
	Devices map[string]map[string]string `json:"devices"`
	// UsedBy lists the instances that apply the profile.
	UsedBy []string `json:"used_by"`
}

// Network is a managed bridge (LXD's Network).
type Network struct {
	// Name is the network's name, unique on the host.
	Name string `json:"name"`
	// Type is always "bridge".
	Type string `json:"type"`
	// Managed is always true: silo made it.
	Managed bool `json:"managed"`
	// Config holds ipv4.address, ipv4.nat, ipv6.address, ipv6.nat and
	// dns.domain, with the addresses as chosen when it was made.
	Config map[string]string `json:"config"`
	// Status is "Created" when the bridge is up, "Unavailable" when it
	// is not (it comes back with the next start of an instance on it).
	Status string `json:"status"`
	// UsedBy lists the instances and profiles with a nic on it.
	UsedBy []string `json:"used_by"`
	// CreatedAt is when the network was made.
	CreatedAt time.Time `json:"created_at"`
}

// NetworkLease is the address a nic holds on a network (LXD's
// NetworkLease).
type NetworkLease struct {
	// Hostname is the instance's name.
	Hostname string `json:"hostname"`
	// Hwaddr is the nic's MAC address.
	Hwaddr string `json:"hwaddr"`
	// Address is one of its addresses.
	Address string `json:"address"`
	// Type is "static": silo gives every address.
	Type string `json:"type"`
	// Device is the nic's device name in the instance.
	Device string `json:"device"`
}
