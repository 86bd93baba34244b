from rest_framework.routers import DefaultRouter

from orders.api.views import BatchViewSet, OrderViewSet, ProductViewSet

router = DefaultRouter()
router.register("batches", BatchViewSet, basename="batch")
router.register("orders", OrderViewSet, basename="order")
router.register("products", ProductViewSet, basename="product")

urlpatterns = router.urls
