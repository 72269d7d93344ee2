"""nuScenes categories -> p4dsim labels, and back for the exporter."""

from __future__ import annotations

#: p4dsim label -> the nuScenes category an export gives an actor whose source kind is unknown
LABEL_TO_CATEGORY = {
    "vehicle": "vehicle.car",
    "pedestrian": "human.pedestrian.adult",
    "cyclist": "vehicle.bicycle",
    "sign": "movable_object.barrier",
    "other": "movable_object.barrier",
}

#: the 23 nuScenes v1.0 categories (name, description), the exporter's category table
CATEGORIES = (
    ("animal", "All animals, e.g. cats, rats, dogs, deer, birds."),
    ("human.pedestrian.adult", "Adult subcategory."),
    ("human.pedestrian.child", "Child subcategory."),
    ("human.pedestrian.construction_worker", "Construction worker"),
    ("human.pedestrian.personal_mobility", "A small electric or self-propelled vehicle."),
    ("human.pedestrian.police_officer", "Police officer."),
    ("human.pedestrian.stroller", "Strollers."),
    ("human.pedestrian.wheelchair", "Wheelchairs."),
    ("movable_object.barrier", "Temporary road barrier placed in the scene."),
    ("movable_object.debris", "Movable object that is left on the driveable surface."),
    ("movable_object.pushable_pullable", "Objects that a pedestrian may push or pull."),
    ("movable_object.trafficcone", "All types of traffic cone."),
    ("static_object.bicycle_rack", "Area or device intended to park or secure the bicycles."),
    (
        "vehicle.bicycle",
        "Human or electric powered 2-wheeled vehicle designed to travel at lower speeds.",
    ),
    ("vehicle.bus.bendy", "Bendy bus subcategory."),
    ("vehicle.bus.rigid", "Rigid bus subcategory."),
    ("vehicle.car", "Vehicle designed primarily for personal use."),
    ("vehicle.construction", "Vehicles primarily designed for construction."),
    ("vehicle.emergency.ambulance", "All types of ambulances."),
    ("vehicle.emergency.police", "All types of police vehicles."),
    ("vehicle.motorcycle", "Gasoline or electric powered 2-wheeled vehicle."),
    ("vehicle.trailer", "Any vehicle trailer."),
    ("vehicle.truck", "Vehicles primarily designed to haul cargo."),
)


def label_of(category: str) -> str:
    """The p4dsim label of a nuScenes category name: ``vehicle.bicycle`` and
    ``vehicle.motorcycle`` -> cyclist, other ``vehicle.*`` -> vehicle, ``human.pedestrian.*``
    -> pedestrian, everything else (``movable_object.*``, ``static_object.*``, ``animal``)
    -> other."""
    if category in ("vehicle.bicycle", "vehicle.motorcycle"):
        return "cyclist"
    if category.startswith("vehicle."):
        return "vehicle"
    if category.startswith("human.pedestrian"):
        return "pedestrian"
    return "other"


def category_for_export(label: str, source_category: str | None) -> str:
    """The nuScenes category of an exported actor: its source category when it is known and
    still agrees with the label, else the generic category of the label."""
    names = {c for c, _ in CATEGORIES}
    if source_category in names and label_of(source_category) == label:
        return source_category
    return LABEL_TO_CATEGORY.get(label, "movable_object.barrier")
